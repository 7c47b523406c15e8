"""The chat pipeline: question -> standalone query -> sources -> streamed, cited answer -> stored turn.

Example:
    >>> chat, user = ChatPipeline(get_settings()), User("erin", "Erin", groups=("all",))
    >>> for event in chat.run("How many days of parental leave do I get?", user):
    ...     if event.type == "token":
    ...         print(event.text, end="")
    >>> first = chat.answer("How many weeks of maternity leave do employees get?", user)
    >>> follow = chat.answer("and for part-time staff?", user, conversation_id=first.conversation_id)
    >>> follow.abstained, [h.payload["file_name"] for h in follow.citations]
    (False, ['parental_leave_policy.md'])

The Streamlit page, `erag ask`, the tests and the answer-quality evaluation all call `run` (events, for
streaming) or `answer` (the final result). The user's access groups always reach the retriever, so no
source, citation or answer can draw on a document the user may not read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from app.abstention import AbstentionGate, other_period, other_quarter, source_features
from app.answer_checks import clean_citations, held_citations, one_case_per_list, source_text, without_unsupported
from app.evidence import EvidenceSelector, Source, approx_tokens
from app.extractive import ExtractiveAnswerer
from app.faq import faq_answer
from app.feedback import FeedbackRanker, FeedbackStore
from app.identity import access_groups
from app.injection import screen_answer, screened_stream
from app.llm import GeneratorBusy, LlamaGenerator, load_generator
from app.memory import ConversationMemory, QueryRewriter
from app.prompt import (
    ABSTAIN_TEXT,
    NO_ANSWER,
    SYSTEM_PROMPT,
    answer_messages,
    answer_prompt_start,
    attribute,
    cited_numbers,
    is_refusal,
)
from app.table_qa import EXPLAIN_CUE, Computation, TableAnswerer
from erag.access import AccessError, GroupScope
from erag.models import load_spacy
from erag.schema import Hit
from erag.settings import Settings
from erag.users import User
from index.filters import Filter
from index.tables import TableStore, open_table_store
from retrieval.pipeline import Retriever
from retrieval.recency import document_period
from retrieval.searcher import QueryError, boost_scale, readable_by

log = logging.getLogger(__name__)
EventType = Literal["rewritten", "sources", "token", "answer"]
Mode = Literal["llm", "table", "extractive", "abstained"]


class ChatInputError(ValueError):
    """The question cannot be answered as asked; the message is meant for the person who typed it."""


@dataclass
class ChatAnswer:
    """The final answer: text, the hits it cites, every source it was given, and how it was produced."""

    text: str
    citations: list[Hit]
    sources: list[Source]
    cited: list[int]
    abstained: bool
    rewritten_query: str
    mode: Mode
    notice: str = ""
    conversation_id: str = ""
    turn_id: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    computation: dict[str, Any] | None = None  # a table answer's SQL, result and source rows (app/table_qa.py)

    def cited_sources(self) -> list[Source]:
        by_number = {s.number: s for s in self.sources}
        return [by_number[n] for n in self.cited if n in by_number]


@dataclass
class ChatEvent:
    """One step of an answer as it happens: the standalone query, the sources, a piece of text, the end."""

    type: EventType
    text: str = ""
    sources: list[Source] = field(default_factory=list)
    answer: ChatAnswer | None = None


def source_record(source: Source, computation: Computation | None = None) -> dict[str, Any]:
    """What a stored turn keeps of a source, so history and feedback export need no index; the source a table
    answer cites also keeps how the answer was computed from it."""
    p = source.hit.payload
    keep = ("doc_id", "file_name", "title", "department", "kind", "page", "sheet", "row_start", "row_end", "table")
    record = {"number": source.number, "id": source.hit.id, "location": source.location, "text": source.hit.text,
              "excerpt": source.excerpt, "relevance": round(source.relevance, 4), "score": source.hit.score,
              **{k: p[k] for k in keep if p.get(k) is not None}}
    if computation is not None and computation.ok and computation.source is source:
        record["computation"] = computation.record()
    return record


@dataclass
class _Parts:
    """What `ChatPipeline.warm_up` loads: the model, the index, the conversation database and what uses them."""

    generator: LlamaGenerator | None
    llm_note: str
    owns_generator: bool
    retriever: Retriever
    memory: ConversationMemory
    selector: EvidenceSelector
    feedback: FeedbackStore
    feedback_ranker: FeedbackRanker | None
    rewriter: QueryRewriter
    tables: TableStore | None
    table_answerer: TableAnswerer | None


class ChatPipeline:
    """Answer questions as a user, remembering each conversation; `run` streams, `answer` returns the result.

    The constructor only keeps the settings and any parts it is given; `warm_up()` loads the model, opens the
    index, the table store and the conversation database. `run` warms up on first use, and so does reading any
    part (`chat.memory`, `chat.retriever`, ...), so a caller never sees a half-built pipeline; the app calls
    `warm_up()` itself so the first question does not wait for the model.
    """

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever | None = None,
        generator: LlamaGenerator | None = None,
        memory: ConversationMemory | None = None,
        selector: EvidenceSelector | None = None,
        feedback_ranker: FeedbackRanker | None = None,
        tables: TableStore | None = None,
    ) -> None:
        if not isinstance(settings, Settings):
            raise TypeError(f"ChatPipeline needs erag.settings.Settings, not {type(settings).__name__}")
        self.settings = settings
        self._given = {"retriever": retriever, "generator": generator, "memory": memory, "selector": selector,
                       "feedback_ranker": feedback_ranker, "tables": tables}
        self._parts: _Parts | None = None
        self._warm_lock = threading.Lock()
        self._keeping: threading.Thread | None = None
        self._stop_keeping = threading.Event()
        self._retrieval_lock = threading.Lock()
        self.gate = AbstentionGate()
        self.extractive = ExtractiveAnswerer()

    def warm_up(self) -> ChatPipeline:
        """Load what answering needs, once (later calls return at once); returns the pipeline for chaining."""
        if self._parts is not None:
            return self
        with self._warm_lock:  # Streamlit sessions may ask at the same moment: load the model once
            if self._parts is None:
                self._parts = self._load()
                if self._parts.generator is not None and self.settings.chat_keep_table_starts:
                    self._keeping = threading.Thread(target=self._read_ahead, daemon=True, name="keep-table-starts")
                    self._keeping.start()
        return self

    def _read_ahead(self) -> None:
        """While no question needs the model: evaluate and keep the answering prompt's start (the worked examples,
        ~300 tokens), then the SQL starts of the tables `default_groups` may read."""
        parts, stop = self._ready, self._stop_keeping.is_set
        assert parts.generator is not None
        start = answer_prompt_start(self.settings.chat_injection_guard)
        while start and not stop() and not parts.generator.keep(SYSTEM_PROMPT, [start], wait_s=1.0):
            pass  # a question holds the model: it evaluates the start itself
        if parts.table_answerer is not None:
            parts.table_answerer.keep_starts(tuple(self.settings.default_groups), stop)

    def wait_for_table_starts(self, timeout: float | None = None) -> bool:
        """Block until the background evaluation of the tables' SQL starts is done (True) or `timeout` passes."""
        if self._keeping is not None:
            self._keeping.join(timeout)
        return self._keeping is None or not self._keeping.is_alive()

    def _load(self) -> _Parts:
        settings, given = self.settings, self._given
        generator: LlamaGenerator | None = given["generator"]
        llm_note = ""
        owns_generator = generator is None
        if generator is None and settings.llm_enabled:
            generator, reason = load_generator(settings)
            llm_note = reason or ""
        elif not settings.llm_enabled:  # switched off wins over a generator passed in
            generator, llm_note = None, "the language model is switched off"
        retriever = given["retriever"] or Retriever(settings)
        memory = given["memory"]
        if memory is None:
            from erag.db import ChatDatabase

            memory = ConversationMemory(ChatDatabase.from_settings(settings))
        count = generator.count_tokens if generator is not None else approx_tokens
        selector = given["selector"] or EvidenceSelector.from_settings(settings, count)
        feedback = FeedbackStore(memory.db)
        feedback_ranker = given["feedback_ranker"]
        if feedback_ranker is None and settings.chat_feedback_boost > 0:
            # The boost is sized on RRF scores; `boost_scale` keeps its share of the best score under other fusions.
            feedback_ranker = FeedbackRanker(feedback, selector.encode,
                                             settings.chat_feedback_boost * boost_scale(settings),
                                             settings.chat_feedback_min_similarity)
        use_llm_rewrite = generator is not None and settings.chat_rewrite == "auto"
        rewriter = QueryRewriter(self._rewrite_with_llm if use_llm_rewrite else None, self._people)
        # Table answers need the model to write SQL: without it, tables are answered from their rows as text.
        tables, table_answerer = given["tables"], None
        if settings.chat_table_answers and generator is not None:
            tables = tables if tables is not None else open_table_store(settings)
            table_answerer = TableAnswerer(tables, generator)
        return _Parts(generator, llm_note, owns_generator, retriever, memory, selector, feedback, feedback_ranker,
                      rewriter, tables, table_answerer)

    @property
    def _ready(self) -> _Parts:
        self.warm_up()
        assert self._parts is not None
        return self._parts

    @property
    def generator(self) -> LlamaGenerator | None:
        return self._ready.generator

    @property
    def llm_note(self) -> str:
        """Why answers are extractive only (no model, a switched-off model), or empty."""
        return self._ready.llm_note

    @property
    def retriever(self) -> Retriever:
        return self._ready.retriever

    @property
    def memory(self) -> ConversationMemory:
        return self._ready.memory

    @property
    def selector(self) -> EvidenceSelector:
        return self._ready.selector

    @property
    def feedback(self) -> FeedbackStore:
        return self._ready.feedback

    @property
    def feedback_ranker(self) -> FeedbackRanker | None:
        return self._ready.feedback_ranker

    @property
    def rewriter(self) -> QueryRewriter:
        return self._ready.rewriter

    @property
    def tables(self) -> TableStore | None:
        return self._ready.tables

    @property
    def table_answerer(self) -> TableAnswerer | None:
        return self._ready.table_answerer

    @table_answerer.setter
    def table_answerer(self, answerer: TableAnswerer | None) -> None:
        """Switch table answers off (None) or on with another answerer (the table evaluation compares both)."""
        self._ready.table_answerer = answerer

    # --- public API --------------------------------------------------------------------------
    def check_question(self, question: str | None) -> str:
        text = " ".join((question or "").split())
        if not text:
            raise ChatInputError("the question is empty: type a question about the company's documents")
        limit = self.settings.chat_max_question_chars
        if len(text) > limit:
            raise ChatInputError(f"the question is too long ({len(text):,} characters; the limit is {limit:,}): "
                                 "ask about one thing at a time")
        return text

    def run(self, question: str, user: User, conversation_id: str | None = None,
            filters: Filter | None = None) -> Iterator[ChatEvent]:
        """Yield the rewritten query, the sources, the answer's text pieces, then the final answer.

        Raises ChatInputError (before yielding anything) for an empty or enormous question, an unknown
        conversation, a bad filter or a user without access groups.
        """
        text = self.check_question(question)
        try:
            groups = access_groups(user)
        except AccessError as exc:  # no groups, blank groups: nobody is shown everything, or anything
            raise ChatInputError(f"{user.name} cannot search: {exc}") from exc
        if conversation_id is not None and not self.memory.owns(user.username, conversation_id):
            raise ChatInputError(f"conversation {conversation_id} does not exist for {user.username}")
        return self._run(text, user, groups, conversation_id, filters)

    def answer(self, question: str, user: User, conversation_id: str | None = None,
               filters: Filter | None = None) -> ChatAnswer:
        """The final answer without streaming (the evaluation harness and scripts use this)."""
        final = None
        for event in self.run(question, user, conversation_id, filters):
            if event.type == "answer":
                final = event.answer
        assert final is not None
        return final

    def facets(self, user: User) -> dict[str, list[str]]:
        """Departments and documents the user may see, for the page's filters."""
        flt = readable_by(access_groups(user))
        store = self.retriever.store
        return {key: sorted(str(v) for v in store.facet_all(key, flt) if v)
                for key in ("department", "file_name")}

    def close(self) -> None:
        self._stop_keeping.set()
        if self._keeping is not None:
            self._keeping.join()  # at most one table's start being evaluated
        parts, self._parts = self._parts, None
        if parts is None:  # never warmed up: nothing was opened
            return
        parts.retriever.close()
        if parts.tables is not None:
            parts.tables.close()
        parts.memory.db.close()
        if parts.generator is not None and parts.owns_generator:
            parts.generator.close()

    # --- steps -------------------------------------------------------------------------------
    def _run(self, text: str, user: User, groups: GroupScope, conversation_id: str | None,
             filters: Filter | None) -> Iterator[ChatEvent]:
        s = self.settings
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if conversation_id is None:
            conversation_id = self.memory.start(user.username, text)
            history: list[tuple[str, str]] = []
        else:
            count = self.generator.count_tokens if self.generator is not None else approx_tokens
            history = self.memory.history(user.username, conversation_id, s.chat_history_tokens, count)
        standalone = self.rewriter.run(text, history) if s.chat_rewrite != "off" else text
        timings["rewrite_s"] = time.perf_counter() - started
        yield ChatEvent("rewritten", text=standalone)

        t = time.perf_counter()
        depth = s.chat_top_k * 2 if self.feedback_ranker is not None and s.chat_feedback_boost > 0 else s.chat_top_k
        try:
            # One index handle serves every browser session; retrieval takes ~20 ms, so serializing it is cheap
            # insurance against a backend that is not thread-safe.
            with self._retrieval_lock:
                result = self.retriever.run(standalone, top_k=depth, groups=groups, filters=filters)
        except QueryError as exc:
            raise ChatInputError(str(exc)) from exc
        hits = result.hits
        if self.feedback_ranker is not None and s.chat_feedback_boost > 0:
            hits = self.feedback_ranker.run(standalone, hits)
        hits = hits[: s.chat_top_k]
        timings["retrieve_s"] = time.perf_counter() - t
        sources = self.selector.prepare(hits)
        timings["sources_s"] = time.perf_counter() - started
        yield ChatEvent("sources", sources=sources)
        t = time.perf_counter()
        self.selector.score(standalone, sources, s.chat_source_tokens)
        timings["select_s"] = time.perf_counter() - t

        answer_text, cited, mode, notice = "", [], "abstained", ""
        # Abstention is decided before the table path: a question no source is close to ("What is the capital of
        # France?" with the staff list as the nearest source) must not be answered by a query over that table.
        reason = self._abstain_reason(standalone, sources)
        computation = None if reason else self._compute(standalone, sources, groups, timings)
        computed = computation is not None and computation.ok
        if computed and not EXPLAIN_CUE.search(standalone):
            assert computation is not None
            answer_text, cited, mode = computation.answer_text(), [computation.source.number], "table"
            timings["first_token_s"] = time.perf_counter() - started
            yield ChatEvent("token", text=answer_text)
        elif reason:
            answer_text, notice = ABSTAIN_TEXT, reason
        elif self.generator is not None:
            pieces: list[str] = []
            try:
                stream = self._generate(standalone, sources, timings, started, pieces,
                                        computation if computed else None)
                if s.chat_injection_guard:
                    stream = screened_stream(stream, f"{text}\n{standalone}", sources)
                for piece in stream:
                    if piece:
                        yield ChatEvent("token", text=piece)
                raw = "".join(pieces).strip()
                if not is_refusal(raw, cited_numbers(raw, [src.number for src in sources])):
                    raw = attribute(raw, sources)
                cited = cited_numbers(raw, [src.number for src in sources])
                refused = is_refusal(raw, cited)
                quoted = faq_answer(sources) if refused else None
                if quoted is not None:
                    # An extractive answer: the closing token event carries it, and the final answer replaces what
                    # streamed before (nothing when the sentinel was held back, else the refusal sentence).
                    (answer_text, number), mode = quoted, "extractive"
                    cited = [number]
                    notice = "the model gave no answer; quoted from the FAQ entry that asks this question"
                elif refused:
                    answer_text, cited, mode = ABSTAIN_TEXT, [], "abstained"
                    notice = "the model found no answer in the sources"
                else:
                    valid = [src.number for src in sources]
                    held = {src.number: source_text(src) for src in sources}
                    if computed:
                        assert computation is not None
                        number = computation.source.number
                        held[number] = f"{held.get(number, '')}\n{computation.as_source()}\n{computation.values()}"
                    answer_text, mode = held_citations(clean_citations(raw, valid), held), "llm"
                    one_case = one_case_per_list(answer_text, standalone, sources)
                    answer_text = one_case.text
                    if one_case.removed:
                        notice = (f"left out {len(one_case.removed)} sentence(s) about another case than the one "
                                  "asked")
                    cited = cited_numbers(answer_text, valid)
                    if s.chat_number_guard:
                        answer_text, cited, mode, notice = self._check_figures(
                            answer_text, sources, cited, computation if computed else None, f"{text}\n{standalone}",
                            notice, self._people)
                    if mode == "llm" and not cited:
                        # Nothing in it is tied to a source the employee can open, even after `attribute` looked
                        # for the excerpt each sentence repeats. Every such answer in the stored evaluation runs
                        # (sample company, tatqa_dev, docugami) was vague or wrong ("The average salary is
                        # calculated by adding up all the salaries ..."), none right: not an answer to show. A
                        # result computed over the table still is one.
                        if computed:
                            assert computation is not None
                            answer_text, cited, mode = (computation.answer_text(), [computation.source.number],
                                                        "table")
                        else:
                            answer_text, mode = ABSTAIN_TEXT, "abstained"
                        notice = "; ".join(filter(None, [notice, "the model's answer cited no source"]))
            except GeneratorBusy as exc:
                answer_text, cited = self.extractive.run(sources, reason=str(exc))
                mode, notice = "extractive", str(exc)
            except Exception as exc:  # a failing model must never take the chat down: quote the sources instead
                reason = f"the language model failed ({type(exc).__name__}: {exc})"
                answer_text, cited = self.extractive.run(sources, reason=reason)
                mode, notice = "extractive", reason
        else:
            answer_text, cited = self.extractive.run(sources, reason=self.llm_note)
            mode, notice = "extractive", self.llm_note
        if s.chat_injection_guard and mode != "abstained":
            # A document's instructions may have been obeyed (or quoted): what they ask for must not reach the
            # employee. Drop those sentences; abstain when nothing with content is left.
            screened = screen_answer(answer_text, f"{text}\n{standalone}", sources)
            if screened.removed:
                answer_text = screened.text
                cited = cited_numbers(answer_text, [src.number for src in sources])
                notice = "; ".join(filter(None, [notice, f"left out {len(screened.removed)} part(s) of the answer "
                                                 "that followed instructions found in a document"]))
                if not screened.has_content:
                    answer_text, cited, mode = ABSTAIN_TEXT, [], "abstained"
        if mode == "extractive":
            yield ChatEvent("token", text=answer_text)
        timings["total_s"] = time.perf_counter() - started
        abstained = mode == "abstained"
        shown = computation if computed and not abstained and computation.source.number in cited else None
        turn_id = self.memory.add_turn(
            user.username, conversation_id, text, standalone, answer_text, mode, abstained,
            [source_record(src, shown) for src in sources], cited, timings,
        )
        by_number = {src.number: src for src in sources}
        final = ChatAnswer(answer_text, [by_number[n].hit for n in cited], sources, cited, abstained, standalone,
                           mode, notice, conversation_id, turn_id, timings, shown.record() if shown else None)
        yield ChatEvent("answer", text=answer_text, sources=sources, answer=final)

    @staticmethod
    def _check_figures(answer_text: str, sources: list[Source], cited: list[int], computation: Computation | None,
                       question: str, notice: str,
                       people: Callable[[str], list[str]] | None = None) -> tuple[str, list[int], Mode, str]:
        """Drop the sentences that state a figure no cited source, computed table result or the question holds: a
        cited number that no source states is worse than no answer. Abstain when nothing with content is left.
        The streamed text cannot be recalled; the final answer (what the page shows and stores) replaces it."""
        texts = [source_text(src) for src in sources if src.number in cited]
        computed = [computation.as_source(), computation.values()] if computation is not None else []
        checked = without_unsupported(answer_text, texts, computed, question=question, people=people)
        if not checked.removed:
            return answer_text, cited, "llm", notice
        if not checked.has_content:
            return ABSTAIN_TEXT, [], "abstained", "the answer stated figures no source holds, or stopped unfinished"
        left_out = (f"left out {len(checked.removed)} sentence(s) stating figures their cited sources do not hold "
                    "or stopping unfinished")
        return (checked.text, cited_numbers(checked.text, [src.number for src in sources]), "llm",
                "; ".join(filter(None, [notice, left_out])))

    def _compute(self, question: str, sources: list[Source], groups: GroupScope,
                 timings: dict[str, float]) -> Computation | None:
        """The table path (app/table_qa.py) when the question asks for a computation over a table among the
        sources; None otherwise, or when the model is busy or the tables cannot be read (the text answer stays)."""
        if self.table_answerer is None or not self.table_answerer.wants(question, sources):
            return None
        try:
            computation = self.table_answerer.run(question, sources, groups)
        except GeneratorBusy:
            return None
        except Exception:  # a table store that cannot be read must never take the chat down
            log.exception("table answer failed")
            return None
        if computation is not None:
            timings["sql_s"] = computation.timings.get("sql_s", 0.0)
        return computation

    def _abstain_reason(self, question: str, sources: list[Source]) -> str:
        s = self.settings
        if not sources:
            return "no document you can see matches the question"
        best = max(src.relevance for src in sources)
        if best < s.chat_min_relevance:
            # A floor under the calibrated gate: "What is the capital of France?" shares the word "capital" with
            # the finance report, enough for the gate's word share, never enough for a close passage.
            return (f"the closest passage is too far from the question (relevance {best:.2f} < "
                    f"{s.chat_min_relevance})")
        if s.chat_abstention == "calibrated":
            reason = self.gate.decide(source_features(question, sources))
            if reason:
                return reason
        reason = other_period(question, [f"{src.hit.payload.get('title', '')} {src.file_name}\n{source_text(src)}"
                                         for src in sources])
        reason = reason or other_quarter(question, [document_period(src.hit.payload) for src in sources])
        if reason:
            return reason
        rerank = sources[0].hit.scores.get("rerank")
        if s.chat_min_rerank_score is not None and rerank is not None and rerank < s.chat_min_rerank_score:
            return f"the best rerank score {rerank:.2f} is below {s.chat_min_rerank_score}"
        return ""

    def _generate(self, question: str, sources: list[Source], timings: dict[str, float],
                  started: float, raw: list[str], computation: Computation | None = None) -> Iterator[str]:
        """The model's pieces (all kept in `raw`), holding back a leading NO_ANSWER so no one sees the sentinel.

        A computed table result goes in as one more source, numbered as the table it was computed from, so the
        model quotes the value instead of working it out (text + table questions)."""
        assert self.generator is not None
        stats: dict[str, Any] = {}
        held: str | None = ""
        t = time.perf_counter()
        computed = (computation.source.number, computation.where(), computation.as_source()) if computation else None
        # The worked examples open every answering prompt word for word: their evaluated state is kept, not re-read.
        shared = answer_prompt_start(any(src.guard for src in sources))
        stream = self.generator.stream(answer_messages(question, sources, computed),
                                       self.settings.llm_max_answer_tokens, stats=stats, probe=NO_ANSWER,
                                       shared=shared)
        try:
            for piece in stream:
                if "first_token_s" not in timings:
                    timings["first_token_s"] = time.perf_counter() - started
                    timings["no_answer_p"] = stats.get("probe_p", 0.0)
                    if timings["no_answer_p"] >= self.settings.chat_no_answer_p:
                        # Below 0.5 this refuses where the model only leans to "the sources do not say" while greedy
                        # decoding would answer. eval/abstention_calibration.py --llm chooses the threshold; on the
                        # current dev sets anything lower than 0.5 refused too many answerable questions. Stop here:
                        # the caller reads the sentinel as a refusal.
                        raw.append(NO_ANSWER)
                        break
                raw.append(piece)
                if held is not None:
                    held += piece
                    if NO_ANSWER.startswith(held.strip().upper().replace(" ", "_")):
                        continue
                    piece, held = held, None
                yield piece
        finally:
            stream.close()  # after an early stop too: the model's lock is released now, not when collected
        timings["generate_s"] = time.perf_counter() - t
        timings["tokens"] = float(stats.get("completion_tokens", 0))
        after_first = timings["generate_s"] - (timings.get("first_token_s", 0.0) - (t - started))
        if timings["tokens"] > 1 and after_first > 0:
            timings["tokens_per_s"] = (timings["tokens"] - 1) / after_first

    def _people(self, text: str) -> list[str]:
        """People named in `text`, in order: what "he" or "she" in a follow-up points to."""
        nlp = load_spacy(self.settings.spacy_model, tuple(self.settings.departments))
        return [entity.text for entity in nlp(text).ents if entity.label_ == "PERSON"]

    def _rewrite_with_llm(self, messages: list[dict[str, str]]) -> str:
        assert self.generator is not None
        try:
            return self.generator.complete(messages, max_tokens=48, stop=["\n"])
        except GeneratorBusy:
            return ""  # the rules take over
