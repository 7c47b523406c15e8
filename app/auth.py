"""Sign-in for the web pages (streamlit-authenticator), and the first-start form that creates the admin.

Example (the navigation does this before any page runs):
    >>> user = sign_in(Settings())       # draws the form and stops the run until someone is signed in
    >>> user.groups, user.admin
    (('all', 'hr'), False)

Users, groups and the admin role come from the users file (`ERAG_USERS_FILE`, default `<home>/users.yaml`,
see `app.accounts`). There is no default password: with no users file the app asks for a one-time setup
code, written to `<home>/setup-code.txt` on the server, and the first administrator's name and password,
so nobody who merely reaches the page first can make themselves admin. The users file is re-read when it
changes, so a user removed or moved to other groups is signed out or narrowed on their next click.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities.exceptions import LoginError

from app.accounts import AccountError, create_users_file, credentials_for_login, read_config
from app.identity import SESSION_USER
from erag.access import AccessError, split_groups
from erag.home import private_dir
from erag.settings import Settings
from erag.users import UnknownUser, User, UserDirectory


@st.cache_resource
def _process_cookie_key() -> str:
    # Only when neither ERAG_AUTH_COOKIE_KEY nor the users file gives one: cookies then die with the process.
    return secrets.token_urlsafe(32)


def setup_code(settings: Settings) -> str:
    """The one-time code that authorises creating the first administrator (kept until the users file exists)."""
    path = settings.home / "setup-code.txt"
    if not path.exists():
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(9) + "\n")
        print(f"erag: first start, no users file yet. The setup code is in {path.resolve()}", flush=True)
    return path.read_text().strip()


def first_start(settings: Settings) -> None:
    """The form that creates the users file with its first administrator."""
    path = settings.users_path
    code = setup_code(settings)
    st.title("Set up the first administrator")
    st.info(f"There are no users yet ({path} does not exist). Enter the setup code from "
            f"`{(settings.home / 'setup-code.txt').resolve()}` on the server, then choose the administrator's "
            "user name and password. There is no default password.")
    with st.form("first-admin"):
        entered = st.text_input("Setup code", type="password")
        username = st.text_input("User name")
        name = st.text_input("Full name")
        groups = st.text_input("Access groups", value="all", help="Comma-separated groups whose documents they read")
        password = st.text_input("Password", type="password")
        confirm = st.text_input("Repeat the password", type="password")
        if st.form_submit_button("Create administrator"):
            if not hmac.compare_digest(entered.strip(), code):
                st.error("The setup code is wrong.")
                return
            try:
                create_users_file(path, username.strip().lower(), name.strip(), password,
                                  list(split_groups(groups)), confirm=confirm)
            except (AccountError, AccessError) as exc:
                st.error(str(exc).capitalize())
                return
            (settings.home / "setup-code.txt").unlink(missing_ok=True)
            st.rerun()


@st.cache_data(show_spinner=False)
def _directory(path: str, mtime: float) -> tuple[dict, UserDirectory, dict]:
    config = read_config(Path(path))
    return credentials_for_login(config), UserDirectory.from_file(Path(path)), dict(config.get("cookie") or {})


_AUTH = "erag_authenticator"
_SET_COOKIE = "erag_set_cookie"


def _forget_user(_details: object = None) -> None:
    st.session_state.pop(SESSION_USER, None)


def sign_in(settings: Settings) -> User:
    """The signed-in user; until someone signs in, draws the sign-in (or first-start) form and stops the run."""
    path = settings.users_path
    if not path.exists():
        first_start(settings)
        st.stop()
    try:
        credentials, directory, cookie = _directory(str(path), path.stat().st_mtime)
    except (AccountError, OSError, ValueError) as exc:
        st.error(f"Sign-in is unavailable: {exc}")
        st.stop()
    key = settings.auth_cookie_key or cookie.get("key") or _process_cookie_key()
    # A copy: the library records login state in the dict it is given, which must not leak between sessions.
    auth = stauth.Authenticate({"usernames": {k: dict(v) for k, v in credentials["usernames"].items()}},
                               cookie.get("name", "erag_auth"), key, settings.auth_cookie_days,
                               auto_hash=False, login_sleep_time=0)
    if not st.session_state.get("authentication_status"):
        st.title("Company documents")
        try:
            auth.login(location="main", fields={"Form name": "Sign in", "Username": "User name",
                                                "Password": "Password", "Login": "Sign in"})
        except LoginError as exc:
            st.error(str(exc))
        if st.session_state.get("authentication_status") is False:
            st.error("Wrong user name or password.")
        if not st.session_state.get("authentication_status"):
            st.stop()
        st.session_state[_SET_COOKIE] = True
        st.rerun()  # signed in just now: draw the pages without the form
    try:
        user = directory.get(str(st.session_state.get("username")))
    except UnknownUser:
        auth.logout(location="unrendered", callback=_forget_user)
        st.error("Your account no longer exists: ask an administrator.")
        st.stop()
    except AccessError:  # no valid groups in the users file: signed out rather than shown everything or nothing
        auth.logout(location="unrendered", callback=_forget_user)
        st.error("Your account has no valid access groups: ask an administrator.")
        st.stop()
    st.session_state[SESSION_USER] = user
    st.session_state[_AUTH] = auth
    if st.session_state.pop(_SET_COOKIE, False):
        # Set on the first full page after signing in: set at the sign-in itself, the rerun that removes the
        # form would remove the cookie component before the browser ran it, and every reload would ask again.
        auth.cookie_controller.set_cookie()
    return user


def sign_out_button() -> None:
    """The sidebar's sign-out button (drawn last, below the page's own sidebar controls)."""
    auth = st.session_state.get(_AUTH)
    if auth is not None and st.session_state.get("authentication_status"):
        auth.logout("Sign out", location="sidebar", key="sign-out", callback=_forget_user)
