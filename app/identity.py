"""Who is asking: the one place pages ask for the current user, and how a user becomes retrieval's groups.

Example:
    >>> current_user(get_settings())           # on a page, after `app.auth.sign_in`
    User(username='erin', name='Erin Example', groups=('all',), admin=False, unrestricted=False)
    >>> access_groups(local_admin())           # the CLI on the local machine: no restriction
    UNRESTRICTED
"""

from __future__ import annotations

from erag.access import GroupScope, require_groups
from erag.settings import Settings
from erag.users import User

# The only unrestricted user: made here for the local command line, never from the users file or a form.
LOCAL_ADMIN = User(username="local-admin", name="Local admin", groups=(), admin=True, unrestricted=True)
SESSION_USER = "erag_user"  # where `app.auth.sign_in` keeps the signed-in user in the Streamlit session


def current_user(settings: Settings) -> User:
    """The signed-in user of this browser session; a page reached without signing in stops here.

    Outside a Streamlit run (benchmarks, scripts) there is no session and no sign-in: the demo employee of
    ERAG_DEMO_USER / ERAG_DEMO_GROUPS (group `all` by default) asks.
    """
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return User.from_entry(settings.demo_user, {"name": settings.demo_user_name, "groups": settings.demo_groups})
    user = st.session_state.get(SESSION_USER)
    if not isinstance(user, User):
        st.error("Please sign in first.")
        st.stop()
    return user


def local_admin(groups: list[str] | tuple[str, ...] | None = None) -> User:
    """The person at the command line: unrestricted like `erag search`, or narrowed to `groups` (validated)."""
    if groups is None:
        return LOCAL_ADMIN
    narrowed = require_groups(groups, where="--groups")
    return User(username=LOCAL_ADMIN.username, name=LOCAL_ADMIN.name, groups=tuple(narrowed), admin=True)


def access_groups(user: User) -> GroupScope:
    """The groups retrieval filters on: the user's validated groups, or UNRESTRICTED for the local CLI only.

    A web user's groups come from the users file and are never empty (an entry without valid groups cannot
    sign in), so even a signed-in administrator searches only the groups they belong to.
    """
    return user.scope()
