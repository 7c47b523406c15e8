"""The employee chat page's layout; `app/streamlit_app.py` runs it (`erag serve`).

Only layout lives here: answers come from `ChatPipeline.run` (as for `erag ask`), memory from
`ConversationMemory`, ratings go to `FeedbackStore`. One pipeline per process (index handle and LLM) is
shared by every browser session through `st.cache_resource`; the generator's lock queues concurrent
questions and answers "busy" after a bounded wait.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.chat import ChatInputError, ChatPipeline, source_record
from app.identity import current_user
from app.memory import PastTurn
from app.table_qa import RULE_CHANGE
from erag.settings import Settings
from index.filters import Filter, Match

ALL = "All"
PENDING = "pending_question"  # (question, conversation id) asked but not yet answered
ANSWERED = "answered_conversation"  # the conversation an answer was just stored in


_opened: list[ChatPipeline] = []


@st.cache_resource(show_spinner="Opening the index and loading the language model...")
def chat_service(settings_json: str) -> ChatPipeline:
    pipeline = ChatPipeline(Settings.model_validate_json(settings_json)).warm_up()
    _opened.append(pipeline)
    return pipeline


def close_services() -> None:
    """Release the index and the model of every pipeline this process opened (tests, shutdown)."""
    while _opened:
        _opened.pop().close()
    chat_service.clear()


def source_label(record: dict[str, Any]) -> str:
    where = record.get("location") or ""
    return f"[{record['number']}] {record.get('file_name') or record.get('doc_id')}" + (f" · {where}" if where else "")


def show_passage(record: dict[str, Any]) -> None:
    """The exact passage: the table rows as a table, or the chunk text, with where it sits in the file."""
    details = [record.get("title"), record.get("department"), record.get("location")]
    st.caption(" · ".join(str(d) for d in details if d))
    table = record.get("table")
    if table and table.get("rows"):
        columns = table.get("columns") or None
        st.dataframe(pd.DataFrame(table["rows"], columns=columns), hide_index=True, width="stretch")
    else:
        text = record.get("text", "")
        first, _, body = text.partition("\n")
        if body and " > " in first:  # the chunk's breadcrumb line (title > headings) as a heading of its own
            st.markdown(f"**{first}**")
            text = body
        st.markdown(text)


def computed_over(computation: dict[str, Any]) -> str:
    """The files (or table names) a stored computation read."""
    return ", ".join(t.get("file_name") or t.get("name", "") for t in computation.get("tables", []))


def show_computation(computation: dict[str, Any]) -> None:
    """How a table answer was computed: the SQL that ran over the real table, its result, the rows behind it."""
    st.markdown("**How this was computed**")
    tables = computed_over(computation)
    rule = computation.get("rule") or RULE_CHANGE
    by_rule = computation.get("written_by") == "rule"
    who = f"written by a fixed rule: {rule}" if by_rule else "written by the language model"
    if computation.get("rewrites"):
        who += ", then corrected by rules: " + ", ".join(computation["rewrites"])
    st.caption(f"One read-only SQL query over {tables} ({who}), run in a sandbox that holds only tables you may "
               "read.")
    st.code(computation.get("sql", ""), language="sql")
    if computation.get("columns"):
        st.dataframe(pd.DataFrame(computation["rows"], columns=computation["columns"]), hide_index=True,
                     width="stretch")
        if computation.get("truncated"):
            st.caption("First 50 result rows shown.")
    rows = computation.get("source_rows") or []
    if rows:
        st.caption(f"Source rows the result came from ({len(rows)}{'+' if len(rows) >= 20 else ''}):")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def show_sources(records: list[dict[str, Any]], cited: list[int]) -> None:
    by_number = {r["number"]: r for r in records}
    for n in cited:
        if n in by_number:
            with st.expander(source_label(by_number[n]), expanded="computation" in by_number[n]):
                if "computation" in by_number[n]:
                    show_computation(by_number[n]["computation"])
                show_passage(by_number[n])
    others = [r for r in records if r["number"] not in cited]
    if others:
        st.caption("Also searched: " + "; ".join(source_label(r) for r in others))


def save_rating(chat: ChatPipeline, username: str, turn_id: int) -> None:
    value = st.session_state.get(f"rating-{turn_id}")
    if value is not None:
        chat.feedback.record(turn_id, username, 1 if value == 1 else -1)


def show_turn(chat: ChatPipeline, username: str, turn: PastTurn) -> None:
    with st.chat_message("user"):
        st.markdown(turn.question)
    with st.chat_message("assistant"):
        st.markdown(turn.answer)
        computed = [r for r in turn.sources if r["number"] in turn.cited and "computation" in r]
        if computed:  # the answer is the value alone: say here that it was computed, and where to see how
            st.caption(f"Computed with SQL over {computed_over(computed[0]['computation'])}: see how under source "
                       f"[{computed[0]['number']}].")
        if turn.rewritten and turn.rewritten != turn.question:
            st.caption(f"Searched for: {turn.rewritten}")
        show_sources(turn.sources, turn.cited)
        key = f"rating-{turn.id}"
        if key not in st.session_state and turn.rating is not None:
            st.session_state[key] = 1 if turn.rating > 0 else 0
        st.feedback("thumbs", key=key, on_change=save_rating, args=(chat, username, turn.id))
        if st.session_state.get(key) is not None:
            left, right = st.columns([4, 1], vertical_alignment="bottom")
            comment = left.text_input("Comment (optional)", value=turn.comment, key=f"comment-{turn.id}")
            if right.button("Send", key=f"send-{turn.id}") and comment.strip():
                chat.feedback.comment(turn.id, username, comment)
                st.toast("Thanks for the feedback")


def sidebar(chat: ChatPipeline, username: str, user_label: str, facets: dict[str, list[str]]) -> Filter | None:
    with st.sidebar:
        st.header("Company documents")
        st.caption(f"Signed in as {user_label}")
        if chat.generator is not None:
            st.caption(f"Answers by {chat.generator.name} (local, llama.cpp)")
        else:
            st.warning(f"Extractive answers only: {chat.llm_note}")
        if st.button("New conversation", icon=":material/add_comment:", width="stretch"):
            st.query_params.pop("c", None)
            st.rerun()
        department = st.selectbox("Department", [ALL, *facets.get("department", [])], key="department")
        document = st.selectbox("Document", [ALL, *facets.get("file_name", [])], key="document")
        past = chat.memory.conversations(username, limit=8)
        if past:
            st.subheader("Recent conversations")
            for cid, title in past:
                if st.button(title[:40], key=f"conv-{cid}", width="stretch"):
                    st.query_params["c"] = cid
                    st.rerun()
    must = [Match(k, v) for k, v in (("department", department), ("file_name", document)) if v and v != ALL]
    return Filter(must=must) if must else None


def ask(chat: ChatPipeline, question: str, user, conversation_id: str | None, filters: Filter | None) -> None:
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            events = chat.run(question, user, conversation_id, filters)
        except ChatInputError as exc:
            st.session_state.pop(PENDING, None)
            st.warning(str(exc).capitalize())
            return
        searched = st.empty()
        cards = st.container()
        final: list[Any] = []
        problem: list[str] = []

        def pieces():
            try:
                for event in events:
                    if event.type == "rewritten" and event.text != " ".join(question.split()):
                        searched.caption(f"Searching for: {event.text}")
                    elif event.type == "sources":
                        cards.caption("Sources: " + "; ".join(source_label(source_record(s)) for s in event.sources)
                                      if event.sources else "No matching documents")
                    elif event.type == "token":
                        yield event.text
                    elif event.type == "answer":
                        final.append(event.answer)
            except ChatInputError as exc:
                problem.append(str(exc).capitalize())

        with st.spinner("Reading the sources..."):
            st.write_stream(pieces())
        st.session_state.pop(PENDING, None)
        if problem:
            st.warning(problem[0])
            return
    if final:
        st.query_params["c"] = st.session_state[ANSWERED] = final[0].conversation_id
        st.rerun()


def main() -> None:
    st.set_page_config(page_title="Company documents chat", page_icon=":material/forum:", layout="wide")
    settings = Settings()
    user = current_user(settings)
    try:
        chat = chat_service(settings.model_dump_json())
    except Exception as exc:  # no index yet, or held by another process: say so instead of a stack trace
        st.error(f"The document index cannot be opened: {exc}")
        st.stop()
    # A rerun the browser requests before it has applied the new "?c=" (the sign-in cookie's component reports
    # back a moment after the first page) carries the old URL; the conversation just answered must not vanish.
    answered = st.session_state.pop(ANSWERED, None)
    conversation_id = st.query_params.get("c") or answered
    if conversation_id and not chat.memory.owns(user.username, conversation_id):
        st.query_params.pop("c", None)
        conversation_id = None
    elif conversation_id and st.query_params.get("c") != conversation_id:
        st.query_params["c"] = conversation_id  # so a reload opens it
    filters = sidebar(chat, user.username, f"{user.name} ({', '.join(user.groups)})", chat.facets(user))

    st.title("Ask the company documents")
    if conversation_id:
        for turn in chat.memory.turns(user.username, conversation_id):
            show_turn(chat, user.username, turn)
    else:
        st.caption("Answers come only from the documents you may read, with numbered citations you can open.")
    question = st.chat_input("Ask about policies, handbooks, reports...")
    if question is not None:
        # Kept until answered: a rerun that Streamlit starts mid-answer (the sign-in cookie's component reports
        # back a moment after the first page, a click elsewhere) stops this run, and the chat input's value
        # lives for one run only, so without this the question would vanish unanswered.
        st.session_state[PENDING] = (question, conversation_id)
    pending = st.session_state.get(PENDING)
    if pending is not None:
        try:
            ask(chat, pending[0], user, pending[1], filters)
        except Exception:
            st.session_state.pop(PENDING, None)  # a question that fails is not asked again on every rerun
            raise

