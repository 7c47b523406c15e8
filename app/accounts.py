"""The users file: create it with the first administrator, add users, read it for sign-in.

Example:
    >>> create_users_file(Path(".erag/users.yaml"), "ada", "Ada Admin", "a long passphrase", groups=["all"])
    >>> add_user(Path(".erag/users.yaml"), "erin", "Erin Example", "another passphrase", groups=["all"])
    >>> UserDirectory.from_file(Path(".erag/users.yaml")).get("ada").admin
    True

The format is streamlit-authenticator's (`credentials.usernames.<name>` with `name`, `email`, a bcrypt
`password` hash and `roles`) plus `groups` per user (`erag.users`), and a `cookie` section whose random
key signs the sign-in cookie. Passwords are only ever stored as bcrypt hashes; a file with a plain-text
password is refused at sign-in (`credentials_for_login`) rather than silently accepted.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from erag.users import ADMIN_ROLE

MIN_PASSWORD = 10
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")  # the hashes streamlit-authenticator checks


def hash_password(password: str) -> str:
    # bcrypt directly (the library streamlit-authenticator hashes with): importing its Hasher loads Streamlit.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


def is_hash(value: str) -> bool:
    return bool(_BCRYPT.match(value))


class AccountError(ValueError):
    """A user cannot be created or the users file cannot be used; the message says why."""


def check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise AccountError("user names are 2-64 lower-case letters, digits, dots, dashes or underscores")


def check_new_user(username: str, password: str, confirm: str | None = None, groups: list[str] | None = None) -> None:
    check_username(username)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if confirm is not None and password != confirm:
        raise AccountError("the two passwords differ")
    bad = [g for g in groups or [] if not _GROUP.match(g)]
    if bad:
        raise AccountError(f"group names are letters, digits, dots, dashes or underscores: {', '.join(bad)}")


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AccountError(f"{path} is not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise AccountError(f"{path} must hold a mapping with a `credentials` section")
    return config


def _write(path: Path, config: dict[str, Any]) -> None:
    """Write atomically with owner-only permissions: the file holds password hashes and the cookie key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False, allow_unicode=True)
    os.replace(tmp, path)


def _entry(name: str, password: str, groups: list[str], admin: bool, email: str) -> dict[str, Any]:
    return {"name": name, "email": email, "password": hash_password(password),
            "roles": [ADMIN_ROLE] if admin else [], "groups": list(groups)}


def create_users_file(path: Path, username: str, name: str, password: str, groups: list[str] | None = None,
                      email: str = "", confirm: str | None = None) -> None:
    """First start: a users file with one administrator and a fresh random cookie key."""
    path = Path(path)
    if path.exists():
        raise AccountError(f"{path} already exists: sign in, or add users with `erag user add`")
    groups = groups or ["all"]
    check_new_user(username, password, confirm, groups)
    _write(path, {
        "cookie": {"name": "erag_auth", "key": secrets.token_urlsafe(32), "expiry_days": 7},
        "credentials": {"usernames": {username: _entry(name or username, password, groups, True, email)}},
    })


def add_user(path: Path, username: str, name: str, password: str, groups: list[str], admin: bool = False,
             email: str = "") -> None:
    """Add a user (or replace one of the same name) to an existing users file."""
    check_new_user(username, password, None, groups)
    config = read_config(Path(path))
    users = config.setdefault("credentials", {}).setdefault("usernames", {}) or {}
    config["credentials"]["usernames"] = users
    users[username] = _entry(name or username, password, groups, admin, email)
    _write(Path(path), config)


def credentials_for_login(config: dict[str, Any]) -> dict[str, Any]:
    """The credentials streamlit-authenticator checks, refusing any password that is not a bcrypt hash."""
    users = ((config.get("credentials") or {}).get("usernames")) or {}
    plain = [name for name, entry in users.items() if not is_hash(str((entry or {}).get("password", "")))]
    if plain:
        raise AccountError(f"the users file stores a plain-text password for {', '.join(sorted(plain))}: "
                           "set it again with `erag user add`")
    return {"usernames": {str(k).lower(): dict(v or {}) for k, v in users.items()}}
