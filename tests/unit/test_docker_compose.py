"""The deployment files (docker-compose.yml, Dockerfile) agree with the code.

No Docker engine is needed: the files are parsed, not run. Each check is a function that returns
a list of problems, so that the same check can be pointed at a deliberately broken copy (see the
tests at the end) to prove that it catches what it claims to catch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from gateway.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]

SERVICES = ("gateway", "postgres", "kafka", "oidc")
KAFKA_VERSION = "4.1.1"
REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?(?P<message>[^}]*)\}$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")


def compose_path() -> Path:
    return REPO_ROOT / "docker-compose.yml"


def dockerfile_path() -> Path:
    return REPO_ROOT / "Dockerfile"


def load_compose(path: Path | None = None) -> dict:
    with (path or compose_path()).open(encoding="utf-8") as file:
        return yaml.safe_load(file)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


# --- what the code reads -------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Environment variable names that `Settings` reads, derived from the class itself."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        # pydantic-settings reads an aliased field by its alias alone, without the prefix.
        names.add((alias if isinstance(alias, str) else prefix + field_name).upper())
    return names


# --- reading the compose file --------------------------------------------------------------


def environment(service: dict) -> dict[str, str | None]:
    """A service's environment, whether written as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {name: None if value is None else str(value) for name, value in env.items()}
    pairs = {}
    for item in env:
        name, sep, value = item.partition("=")
        pairs[name] = value if sep else None
    return pairs


def is_required_variable(value: str | None) -> bool:
    return value is not None and REQUIRED_VARIABLE.match(value) is not None


def named_volume_sources(service: dict) -> list[str]:
    """Sources of the service's volume mounts that are named volumes (not bind mounts)."""
    sources = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, str):
            parts = mount.split(":")
            if len(parts) < 2:
                continue  # anonymous volume
            source, kind = parts[0], None
        else:
            source, kind = mount.get("source", ""), mount.get("type", "volume")
        is_path = source.startswith(("/", ".", "~", "$"))
        if (kind or "volume") == "volume" and source and not is_path:
            sources.append(source)
    return sources


# --- checks: each returns a list of problems -----------------------------------------------


def gateway_environment_problems(compose: dict, known: set[str] | None = None) -> list[str]:
    known = settings_env_names() if known is None else known
    env = environment(compose["services"]["gateway"])
    return [
        f"gateway sets {name}, which gateway.settings.Settings does not read"
        for name in env
        if name.startswith("GATEWAY_") and name not in known
    ]


def database_url_problems(compose: dict) -> list[str]:
    env = environment(compose["services"]["gateway"])
    url = env.get("GATEWAY_DATABASE_URL")
    if not url:
        return ["gateway does not set GATEWAY_DATABASE_URL"]
    scheme, sep, rest = url.partition("://")
    if not sep:
        return [f"GATEWAY_DATABASE_URL is not a URL: {url!r}"]
    problems = []
    if scheme != "postgresql+psycopg":
        problems.append(f"GATEWAY_DATABASE_URL uses {scheme!r}, not the psycopg (3) driver")
    userinfo, _, location = rest.rpartition("@")
    host_port, _, database = location.partition("/")
    host = host_port.split(":")[0]
    if host != "postgres" or "postgres" not in compose["services"]:
        problems.append(f"GATEWAY_DATABASE_URL points at {host!r}, not the postgres service")
    user, _, password = userinfo.partition(":")
    if not is_required_variable(password):
        problems.append("the database password in GATEWAY_DATABASE_URL is not a required ${VAR:?...}")
    pg_env = environment(compose["services"].get("postgres", {}))
    if user != pg_env.get("POSTGRES_USER"):
        problems.append(f"GATEWAY_DATABASE_URL user {user!r} is not the postgres service's POSTGRES_USER")
    if database != pg_env.get("POSTGRES_DB"):
        problems.append(f"GATEWAY_DATABASE_URL database {database!r} is not the postgres service's POSTGRES_DB")
    password_match = REQUIRED_VARIABLE.match(password or "")
    pg_password = REQUIRED_VARIABLE.match(pg_env.get("POSTGRES_PASSWORD") or "")
    if password_match and pg_password and password_match["name"] != pg_password["name"]:
        problems.append("GATEWAY_DATABASE_URL and POSTGRES_PASSWORD take the password from different variables")
    return problems


def data_key_problems(compose: dict) -> list[str]:
    value = environment(compose["services"]["gateway"]).get("GATEWAY_DATA_KEY")
    if not is_required_variable(value):
        return [f"GATEWAY_DATA_KEY must come from a required variable ${{VAR:?message}}, not {value!r}"]
    return []


def secret_problems(compose: dict) -> list[str]:
    """Any variable named like a secret is a required variable, never a literal or a default."""
    return [
        f"{service_name}: {name} is not a required ${{VAR:?message}}"
        for service_name, service in compose["services"].items()
        for name, value in environment(service).items()
        if SECRET_NAME.search(name) and not is_required_variable(value)
    ]


def healthcheck_problems(compose: dict) -> list[str]:
    problems = []
    for name in SERVICES:
        check = (compose["services"].get(name) or {}).get("healthcheck") or {}
        if check.get("disable") or not check.get("test"):
            problems.append(f"{name} has no healthcheck")
    return problems


def named_volume_problems(compose: dict, service_name: str) -> list[str]:
    declared = compose.get("volumes") or {}
    sources = named_volume_sources(compose["services"][service_name])
    if not sources:
        return [f"{service_name} keeps its data in no named volume"]
    return [f"{service_name} uses volume {source!r}, which is not declared at top level" for source in sources if source not in declared]


def kafka_image_problems(compose: dict) -> list[str]:
    image = compose["services"]["kafka"].get("image", "")
    repository, _, tag = image.partition("@")[0].rpartition(":")
    if (repository, tag) != ("apache/kafka", KAFKA_VERSION):
        return [f"kafka image is {image!r}, not apache/kafka:{KAFKA_VERSION}"]
    return []


# --- reading the Dockerfile ----------------------------------------------------------------


def dockerfile_instructions(path: Path | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in (path or dockerfile_path()).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comments and blank lines, also inside continuations
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def last(instructions: list[tuple[str, str]], keyword: str) -> str | None:
    values = [arguments for name, arguments in instructions if name == keyword]
    return values[-1] if values else None


def dockerfile_cmd_problems(path: Path | None = None) -> list[str]:
    cmd = last(dockerfile_instructions(path), "CMD")
    if cmd is None:
        return ["the Dockerfile has no CMD"]
    try:
        argv = json.loads(cmd)
    except json.JSONDecodeError:
        return [f"CMD is not in exec (JSON) form, so the gateway would not get SIGTERM: {cmd}"]
    if argv[:2] != ["gateway", "serve"]:
        return [f"CMD does not run `gateway serve`: {argv}"]
    return []


# --- the compose file ----------------------------------------------------------------------


def test_the_four_services_exist(compose):
    assert set(SERVICES) <= set(compose["services"])


def test_every_service_has_a_healthcheck(compose):
    assert healthcheck_problems(compose) == []


@pytest.mark.parametrize("service_name", ["postgres", "kafka"])
def test_data_lives_in_declared_named_volumes(compose, service_name):
    assert named_volume_problems(compose, service_name) == []


def test_kafka_is_the_version_the_project_tests_against(compose):
    assert kafka_image_problems(compose) == []


def test_kafka_runs_as_a_single_kraft_node_without_auto_created_topics(compose):
    env = environment(compose["services"]["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for name in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[name] == "1", name
    mounted = {
        mount.split(":")[1] if isinstance(mount, str) else mount.get("target")
        for mount in compose["services"]["kafka"]["volumes"]
    }
    assert env["KAFKA_LOG_DIRS"] in mounted


def test_gateway_sets_only_variables_that_settings_reads(compose):
    assert gateway_environment_problems(compose) == []


def test_gateway_uses_the_postgres_service_with_psycopg(compose):
    assert database_url_problems(compose) == []


def test_the_data_key_is_a_required_variable(compose):
    assert data_key_problems(compose) == []


def test_no_secret_is_written_in_the_file(compose):
    assert secret_problems(compose) == []


def test_gateway_waits_for_healthy_dependencies(compose):
    depends_on = compose["services"]["gateway"]["depends_on"]
    for name in ("postgres", "kafka", "oidc"):
        assert depends_on[name]["condition"] == "service_healthy", name


def test_gateway_can_be_scaled(compose):
    gateway = compose["services"]["gateway"]
    assert "container_name" not in gateway
    assert "build" in gateway


def test_gateway_healthcheck_asks_healthz(compose):
    assert any("/healthz" in part for part in compose["services"]["gateway"]["healthcheck"]["test"])


# --- the Dockerfile ------------------------------------------------------------------------


def test_dockerfile_runs_gateway_serve():
    assert dockerfile_cmd_problems() == []


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck():
    instructions = dockerfile_instructions()
    user = last(instructions, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0")
    assert "/healthz" in (last(instructions, "HEALTHCHECK") or "")
    assert "8080" in (last(instructions, "EXPOSE") or "").split()
    assert (last(instructions, "FROM") or "").startswith("python:3.11-slim")


# --- the checks catch what they claim to catch ---------------------------------------------

BREAKAGES = {
    "unknown GATEWAY_ variable": (r"\bGATEWAY_LOG_LEVEL:", "GATEWAY_LOGLEVEL:", gateway_environment_problems),
    "hard-coded data key": (
        r'GATEWAY_DATA_KEY: ".*"',
        'GATEWAY_DATA_KEY: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"',
        data_key_problems,
    ),
    "optional data key": (r"\$\{GATEWAY_DATA_KEY:\?", "${GATEWAY_DATA_KEY:-", data_key_problems),
    "psycopg2 driver": (r"postgresql\+psycopg://", "postgresql+psycopg2://", database_url_problems),
    "database on localhost": (r"@postgres:5432/", "@localhost:5432/", database_url_problems),
    "other kafka version": (r"apache/kafka:4\.1\.1", "apache/kafka:3.9.0", kafka_image_problems),
    "undeclared volume": (r"- postgres-data:/", "- pgdata:/", lambda c: named_volume_problems(c, "postgres")),
    "password with a default": (r"\$\{KEYCLOAK_ADMIN_PASSWORD:\?[^}]*\}", "${KEYCLOAK_ADMIN_PASSWORD:-admin}", secret_problems),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_check_fails_on_a_broken_copy_of_the_compose_file(breakage, tmp_path):
    pattern, replacement, check = BREAKAGES[breakage]
    text, count = re.subn(pattern, lambda _: replacement, compose_path().read_text(encoding="utf-8"))
    assert count, f"the compose file no longer contains {pattern!r}: update this breakage"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text, encoding="utf-8")
    assert check(load_compose()) == []
    assert check(load_compose(broken)) != []


def test_a_renamed_setting_is_caught(compose):
    renamed = settings_env_names() - {"GATEWAY_LOG_LEVEL"} | {"GATEWAY_LOGGING_LEVEL"}
    assert gateway_environment_problems(compose, known=renamed) == [
        "gateway sets GATEWAY_LOG_LEVEL, which gateway.settings.Settings does not read"
    ]


def test_a_shell_form_or_wrong_cmd_is_caught(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text('FROM python:3.11-slim\nCMD gateway serve\n', encoding="utf-8")
    assert dockerfile_cmd_problems(broken) != []
    broken.write_text('FROM python:3.11-slim\nCMD ["uvicorn", "gateway.api:app"]\n', encoding="utf-8")
    assert dockerfile_cmd_problems(broken) != []
