"""Who is asking: users, their access groups and the admin role, read from one users file.

The file is the YAML that streamlit-authenticator reads (`credentials.usernames.<name>` with `name`,
`email`, a bcrypt `password` and `roles`), plus a `groups` list per user, so sign-in and access control
share one source of truth.

Example:
    >>> directory = UserDirectory.from_file(Path("config/users.demo.yaml"))
    >>> directory.get("erin").groups
    ('all',)
    >>> directory.get("erin").scope()
    ('all',)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erag.access import UNRESTRICTED, AccessError, GroupScope, require_groups

ADMIN_ROLE = "admin"


class UnknownUser(LookupError):
    """The user name is not in the users file; the message lists where to add it."""


@dataclass(frozen=True)
class User:
    """A person asking. `groups` are the access groups whose documents retrieval may return.

    `unrestricted` is only ever set by the local administrator's command line (`app.identity.local_admin`):
    no users-file entry can produce it, so a web administrator searches their own groups like anyone else.
    """

    username: str
    name: str
    groups: tuple[str, ...]
    admin: bool = False
    unrestricted: bool = False

    @classmethod
    def from_entry(cls, username: str, entry: dict[str, Any]) -> User:
        """A users-file entry; its `groups` must be a non-empty list of valid names (AccessError otherwise)."""
        groups = require_groups(entry.get("groups"), where=f"user '{username}' in the users file")
        assert groups is not UNRESTRICTED  # require_groups only passes UNRESTRICTED through, data never holds it
        roles = entry.get("roles") or []
        return cls(
            username=username,
            name=str(entry.get("name") or username),
            groups=tuple(groups),
            admin=ADMIN_ROLE in roles,
        )

    def scope(self) -> GroupScope:
        """What retrieval filters on for this user: their groups (validated), or UNRESTRICTED for the local CLI."""
        if self.unrestricted:
            return UNRESTRICTED
        return require_groups(self.groups, where=f"user '{self.username}'")


class UserDirectory:
    """The users of one deployment, by user name.

    An entry whose groups are missing, empty or blank is kept out of `users` and listed in `problems`: that
    person cannot sign in or be acted as (fail closed), while everyone else still can.
    """

    def __init__(self, users: dict[str, User], source: Path | None = None,
                 problems: dict[str, str] | None = None) -> None:
        self.users = users
        self.source = source
        self.problems = problems or {}

    @classmethod
    def from_file(cls, path: Path) -> UserDirectory:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"users file {path} does not exist (set ERAG_USERS_FILE)")
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = (config.get("credentials") or {}).get("usernames") or {}
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: credentials.usernames must map user names to their details")
        users: dict[str, User] = {}
        problems: dict[str, str] = {}
        for name, entry in entries.items():
            try:
                users[str(name)] = User.from_entry(str(name), entry if isinstance(entry, dict) else {})
            except AccessError as exc:
                problems[str(name)] = str(exc)
        return cls(users, path, problems)

    def get(self, username: str) -> User:
        user = self.users.get(username)
        if user is None:
            if username in self.problems:
                raise AccessError(f"{self.problems[username]}: that user can neither sign in nor be acted as "
                                  "until an administrator fixes the entry (erag user add NAME --groups ...)")
            where = f" in {self.source}" if self.source else ""
            known = ", ".join(sorted(self.users)) or "none"
            raise UnknownUser(f"no user '{username}'{where} (known: {known})")
        return user
