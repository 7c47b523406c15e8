"""The admin page's layout (admins only): upload, live per-file progress, documents, index statistics, feedback.

Only layout lives here: uploads go through `IngestionService.submit_uploads` (checks in `jobs.uploads`),
documents and statistics come from `IndexAdmin`, ratings from `feedback_summary`. The navigation only
lists this page for admins; it checks the role again in case it is reached another way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.chat_page import chat_service
from app.identity import current_user
from app.index_admin import IndexAdmin, feedback_summary
from app.services import ingestion_service
from erag.settings import Settings
from erag.users import User, UserDirectory
from jobs.board import ACTIVE, FAILED, INDEXED, QUEUED, SPOOLED
from jobs.service import IngestionService

# What each status means to an administrator ("spooled": chunks ready, waiting for the index writer).
LABELS = {QUEUED: "queued", "parsing": "parsing", "tagging": "tagging entities", "embedding": "embedding",
          "indexing": "indexing", SPOOLED: "indexing", INDEXED: "indexed", FAILED: "failed"}


def known_groups(settings: Settings, index_groups: list[str]) -> list[str]:
    groups = {"all", *index_groups}
    try:
        for user in UserDirectory.from_file(settings.users_path).users.values():
            groups.update(user.groups)
    except (OSError, ValueError):
        pass  # the page still works with the groups the index knows
    return sorted(groups)


def upload_section(service: IngestionService, user: User, groups: list[str], departments: list[str]) -> None:
    st.subheader("Upload documents")
    s = service.settings
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(
            "Drop files here (PDF, Word, Excel, CSV, HTML, Markdown, text)", accept_multiple_files=True,
            help=f"Up to {s.upload_max_files} files and {s.max_file_mb:g} MB per file; archives are refused.")
        left, middle, right = st.columns(3)
        chosen = left.multiselect("Access groups", groups, default=["all"], accept_new_options=True,
                                  help="Who may read these documents; type a new group to add it.")
        department = middle.selectbox("Department", ["", *departments], accept_new_options=True)
        owner = right.text_input("Owner", value=user.name)
        submitted = st.form_submit_button("Upload and ingest", type="primary", icon=":material/upload:")
    if submitted:
        if not files:
            st.warning("Choose or drop files first.")
        elif not chosen:
            st.warning("Choose at least one access group: otherwise nobody could read these documents.")
        else:
            meta = {k: v for k, v in (("groups", list(chosen)), ("department", department or None),
                                      ("owner", owner.strip() or None)) if v}
            outcomes = service.submit_uploads([(f.name, f.getvalue()) for f in files], meta, user.username)
            st.session_state["upload-outcomes"] = [(o.name, o.accepted, o.message) for o in outcomes]
            st.session_state["upload-jobs"] = [o.job_id for o in outcomes if o.job_id is not None]
    outcomes = st.session_state.get("upload-outcomes", [])
    queued = [name for name, accepted, _ in outcomes if accepted]
    if queued:
        shown = ", ".join(queued[:8]) + (f" and {len(queued) - 8} more" if len(queued) > 8 else "")
        st.success(f"Queued {len(queued)} file(s) for ingestion: {shown}")
    for name, accepted, message in outcomes:
        if not accepted:
            st.error(f"**{name}**: {message}")


def jobs_frame(service: IngestionService) -> pd.DataFrame:
    rows = [{"file": j.file_name, "status": LABELS.get(j.status, j.status), "progress": j.progress,
             "chunks": j.chunks or None, "detail": j.reason or j.outcome,
             "groups": ", ".join(j.meta.get("groups", [])), "by": j.submitted_by,
             "updated": j.updated_at.strftime("%H:%M:%S")} for j in service.board.recent(200)]
    return pd.DataFrame(rows)


def batch_summary(service: IngestionService, job_ids: list[int]) -> None:
    """The last upload's outcome in one line, as `erag ingest` ends: how many indexed, how many failed."""
    counts = service.board.summary(job_ids)
    if not counts:
        return
    failed, indexed = counts.get(FAILED, 0), counts.get(INDEXED, 0)
    if sum(counts.values()) > failed + indexed:
        return  # still in the works: the table below shows each file
    line = f"Last upload: {indexed} of {len(job_ids)} file(s) indexed"
    if failed:
        st.error(f"{line}, **{failed} failed** (the reasons are in the table below); the others are searchable.")
    else:
        st.success(f"{line}.")


def progress_section(service: IngestionService) -> None:
    """Per-file progress; refreshes itself every 2 s while files are in the works, then reloads the page."""
    pending = service.board.pending()

    def show() -> None:
        now_pending = service.board.pending()
        counts = service.board.counts()
        if pending and not now_pending:
            st.rerun(scope="app")  # all done: refresh the document list and statistics too
        st.subheader("Ingestion progress")
        working = sum(counts.get(s, 0) for s in ACTIVE)
        st.caption(f"{counts.get(QUEUED, 0)} queued · {working} in progress · {counts.get(INDEXED, 0)} indexed · "
                   f"{counts.get(FAILED, 0)} failed · {service.supervisor.alive()} worker process(es) beside the app")
        if service.thread.last_error:
            st.warning(f"The index writer reported: {service.thread.last_error}")
        batch_summary(service, st.session_state.get("upload-jobs", []))
        frame = jobs_frame(service)
        if frame.empty:
            st.caption("No uploads yet.")
            return
        st.dataframe(frame, hide_index=True, width="stretch", height=min(38 + 35 * len(frame), 420),
                     column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0,
                                                                                max_value=1.0, format="percent")})

    st.fragment(show, run_every=2.0 if pending else None)()


def documents_section(service: IngestionService, admin: IndexAdmin, user: User) -> None:
    st.subheader("Indexed documents")
    docs = admin.documents()
    if not docs:
        st.caption("The index is empty: upload documents above.")
        return
    st.dataframe(pd.DataFrame([{"file": d.file_name, "title": d.title, "department": d.department,
                                "groups": ", ".join(d.groups), "owner": d.owner, "chunks": d.chunks,
                                "ingested": d.ingested_at.replace("T", " ")[:16]} for d in docs]),
                 hide_index=True, width="stretch")
    labels = {d.doc_id: f"{d.file_name} ({d.department or 'no department'}, {d.chunks} chunks)" for d in docs}
    chosen = st.multiselect("Documents to act on", list(labels), format_func=labels.__getitem__, key="chosen-docs")
    left, middle, right = st.columns([1, 1, 2], vertical_alignment="center")
    if left.button("Re-ingest", icon=":material/refresh:", disabled=not chosen):
        targets, problems = admin.reingest_targets(chosen)
        if targets:
            service.submit_paths(targets, user.username)
            st.success(f"Queued {len(targets)} document(s) for re-ingestion.")
        for problem in problems:
            st.error(problem)
    confirm = right.checkbox("Yes, delete the selected documents", key="confirm-delete")
    if middle.button("Delete", icon=":material/delete:", disabled=not (chosen and confirm)):
        removed = admin.delete(chosen)
        st.session_state.pop("chosen-docs", None)
        st.session_state.pop("confirm-delete", None)
        st.session_state["deleted"] = f"Deleted {len(chosen)} document(s), {removed} chunks."
        st.rerun()
    if "deleted" in st.session_state:
        st.success(st.session_state.pop("deleted"))


def stats_section(admin: IndexAdmin) -> None:
    st.subheader("Index")
    stats = admin.stats()
    cols = st.columns(4)
    cols[0].metric("Documents", f"{stats.documents:,}")
    cols[1].metric("Chunks", f"{stats.chunks:,}")
    cols[2].metric("Bytes per chunk", f"{stats.bytes_per_chunk:,.0f}" if stats.bytes_per_chunk else "n/a",
                   help="Disk used by the embedded index per chunk (text, payload, vectors, codes, WAL).")
    cols[3].metric("Disk", f"{stats.disk_bytes / 1048576:,.1f} MB" if stats.disk_bytes else "n/a")
    st.caption(f"Quantization: {stats.quantization} · search: {stats.search_mode} · embedder: {stats.embedder} · "
               f"backend: {stats.backend}")


def feedback_section(feedback: Any) -> None:
    st.subheader("Answer feedback")
    summary = feedback_summary(feedback)
    cols = st.columns(4)
    cols[0].metric("Ratings", summary.ratings)
    cols[1].metric("Helpful", f"{summary.share_up:.0%}" if summary.share_up is not None else "n/a")
    cols[2].metric("Thumbs down", summary.down)
    cols[3].metric("Comments", summary.comments)
    if summary.recent:
        st.dataframe(pd.DataFrame(summary.recent), hide_index=True, width="stretch")
    else:
        st.caption("No ratings yet.")


def main() -> None:
    settings = Settings()
    user = current_user(settings)
    if not user.admin:
        st.error("This page is for administrators.")
        st.stop()
    settings_json = settings.model_dump_json()
    try:
        chat = chat_service(settings_json)
        service = ingestion_service(settings_json)
    except Exception as exc:  # the index is held by another process, or the queue is unreachable
        st.error(f"Ingestion is unavailable: {exc}")
        st.stop()
    admin = IndexAdmin(settings, chat.retriever.store, chat.tables)
    store = chat.retriever.store
    index_groups = [str(g) for g in store.facet_all("groups")]
    departments = sorted({*settings.departments, *(str(d) for d in store.facet_all("department"))})
    st.title("Documents and ingestion")
    upload_section(service, user, known_groups(settings, index_groups), departments)
    progress_section(service)
    documents_section(service, admin, user)
    stats_section(admin)
    feedback_section(chat.feedback)


if __name__ == "__main__":
    main()
