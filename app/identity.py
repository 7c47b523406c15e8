"""Who is chatting: the one place the app asks for the current user (sign-in replaces `current_user`).

Example:
    >>> current_user(get_settings())
    User(username='demo', name='Demo Employee', groups=('all',), admin=False)
"""

from __future__ import annotations

from erag.settings import Settings
from erag.users import User

LOCAL_ADMIN = User(username="local-admin", name="Local admin", groups=(), admin=True)


def current_user(settings: Settings) -> User:
    """The page's user. Until sign-in lands, a demo employee built from ERAG_DEMO_USER / ERAG_DEMO_GROUPS."""
    return User.from_entry(settings.demo_user, {"name": settings.demo_user_name, "groups": settings.demo_groups},
                           settings.default_groups)


def local_admin(groups: list[str] | None = None) -> User:
    """The person at the command line: unrestricted like `erag search`, or narrowed to `groups`."""
    if groups is None:
        return LOCAL_ADMIN
    return User(username=LOCAL_ADMIN.username, name=LOCAL_ADMIN.name, groups=tuple(groups), admin=True)


def access_groups(user: User) -> list[str] | None:
    """The groups retrieval filters on; None (no restriction) only for an admin with no groups: the local CLI."""
    if user.admin and not user.groups:
        return None
    return list(user.groups)
