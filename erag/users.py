"""Who is asking: users, their access groups and the admin role, read from one users file.

The file is the YAML that streamlit-authenticator reads (`credentials.usernames.<name>` with `name`,
`email`, a bcrypt `password` and `roles`), plus a `groups` list per user, so sign-in and access control
share one source of truth.

Example:
    >>> directory = UserDirectory.from_file(Path("config/users.demo.yaml"))
    >>> directory.get("erin").groups
    ('all',)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_ROLE = "admin"


class UnknownUser(LookupError):
    """The user name is not in the users file; the message lists where to add it."""


@dataclass(frozen=True)
class User:
    """A signed-in person. `groups` are the access groups whose documents retrieval may return."""

    username: str
    name: str
    groups: tuple[str, ...]
    admin: bool = False

    @classmethod
    def from_entry(cls, username: str, entry: dict[str, Any], default_groups: list[str]) -> User:
        groups = entry.get("groups") or default_groups
        if isinstance(groups, str):
            groups = [g.strip() for g in groups.split(",")]
        roles = entry.get("roles") or []
        return cls(
            username=username,
            name=str(entry.get("name") or username),
            groups=tuple(sorted({str(g).strip() for g in groups if str(g).strip()})),
            admin=ADMIN_ROLE in roles,
        )


class UserDirectory:
    """The users of one deployment, by user name."""

    def __init__(self, users: dict[str, User], source: Path | None = None) -> None:
        self.users = users
        self.source = source

    @classmethod
    def from_file(cls, path: Path, default_groups: list[str] | None = None) -> UserDirectory:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"users file {path} does not exist (set ERAG_USERS_FILE)")
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries = (config.get("credentials") or {}).get("usernames") or {}
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: credentials.usernames must map user names to their details")
        users = {
            str(name): User.from_entry(str(name), entry or {}, default_groups or ["all"])
            for name, entry in entries.items()
        }
        return cls(users, path)

    def get(self, username: str) -> User:
        user = self.users.get(username)
        if user is None:
            where = f" in {self.source}" if self.source else ""
            known = ", ".join(sorted(self.users)) or "none"
            raise UnknownUser(f"no user '{username}'{where} (known: {known})")
        return user
