"""The app's frame: sign-in first, then the pages this user may open (Chat for all, Admin for admins).

`app/streamlit_app.py` runs `main()`. A non-admin's navigation has no Admin page at all, so its URL
leads nowhere; the admin page checks the role again itself.
"""

from __future__ import annotations

import streamlit as st

from app import chat_page
from app.auth import sign_in, sign_out_button
from app.services import ingestion_service, writer_lock
from erag.settings import Settings


def main() -> None:
    st.set_page_config(page_title="Company documents", page_icon=":material/forum:", layout="wide")
    settings = Settings()
    user = sign_in(settings)
    settings_json = settings.model_dump_json()
    try:
        writer_lock(settings_json)  # before the chat opens the embedded index: see app/services.py
        ingestion_service(settings_json)  # applies finished uploads even if no admin page is open
    except Exception as exc:  # no index yet, or held elsewhere: the pages say so in their own words
        st.sidebar.warning(f"Ingestion is unavailable: {exc}")
    pages = [st.Page(chat_page.main, title="Chat", icon=":material/forum:", url_path="chat", default=True)]
    if user.admin:
        pages.append(st.Page("admin_page.py", title="Admin", icon=":material/admin_panel_settings:",
                             url_path="admin"))
    try:
        st.navigation(pages).run()
    finally:  # also when the page stopped early (st.stop), so signing out is always possible
        sign_out_button()
