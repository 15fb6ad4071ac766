"""A throwaway PostgreSQL server for one test session.

``PostgresServer`` runs ``initdb`` into a fresh temporary directory and starts the server on
127.0.0.1 on a free port, tuned for speed (fsync off: the data is thrown away). As root the
server binaries run as the ``postgres`` user through ``runuser`` (``initdb`` refuses root);
otherwise they run as the current user. The superuser is always ``postgres``, trust auth.

Tests use the ``postgres_server`` session fixture (imported by ``tests/conftest.py``):

* ``GATEWAY_TEST_POSTGRES_URL`` set: use that existing server instead (a SQLAlchemy or libpq
  URL naming a superuser or a role with CREATEDB; its database is the maintenance database);
* else, if the server binaries are installed: start a ``PostgresServer``;
* else fail under CI (``CI=true``), skip otherwise. ``./scripts/ensure-postgres.sh`` installs
  the binaries.

A fresh migrated database is cheap: migrate one template database once, then
``create_database(name, template=...)`` per test. ``CREATE DATABASE ... TEMPLATE`` fails if
anything is still connected to the template, so dispose engines on it first.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from tests.support.services import unavailable

ENV_URL = "GATEWAY_TEST_POSTGRES_URL"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
_REQUIRED = ("initdb", "pg_ctl", "postgres")

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def external_url() -> str | None:
    """URL of an existing server the tests should use instead of starting one."""
    return os.environ.get(ENV_URL)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (0,)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding the server binaries, else the
    directory of an ``initdb`` on PATH, else None."""
    candidates: list[Path] = []
    if DEBIAN_ROOT.is_dir():
        candidates = sorted(
            (p / "bin" for p in DEBIAN_ROOT.iterdir() if p.is_dir()),
            key=lambda b: _version_key(b.parent),
            reverse=True,
        )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _REQUIRED):
            return bindir
    return None


def _is_root() -> bool:
    return os.geteuid() == 0


def _missing_reason() -> str | None:
    """Why a local server cannot be started, or None if it can."""
    if find_bindir() is None:
        return (
            f"no PostgreSQL server binaries ({', '.join(_REQUIRED)}) under "
            f"{DEBIAN_ROOT}/<version>/bin or on PATH; run ./scripts/ensure-postgres.sh "
            f"or set {ENV_URL}"
        )
    if _is_root():
        if shutil.which("runuser") is None:
            return "running as root but `runuser` is missing (initdb refuses to run as root)"
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root but there is no `{SUPERUSER}` OS user to run the server as"
    return None


def binaries_available() -> bool:
    """True if a local throwaway server can be started."""
    return _missing_reason() is None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PostgresAPI:
    """What tests use, common to a started and an external server."""

    _base: URL  # SQLAlchemy URL of the maintenance database

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the maintenance database (``postgres``)."""
        return self._base.render_as_string(hide_password=False)

    def database_url(self, name: str) -> str:
        """SQLAlchemy URL (postgresql+psycopg) of database ``name`` on this server."""
        return self._base.set(database=name).render_as_string(hide_password=False)

    def conninfo(self, name: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` to database ``name`` (default: maintenance)."""
        u = self._base
        kwargs: dict[str, Any] = {
            "host": u.host,
            "port": u.port,
            "user": u.username,
            "password": u.password,
            "dbname": name or u.database,
            "connect_timeout": 10,
        }
        for key, value in u.query.items():
            kwargs[key] = value if isinstance(value, str) else value[-1]
        return {k: v for k, v in kwargs.items() if v is not None}

    def connect(self, name: str | None = None, *, autocommit: bool = True) -> psycopg.Connection:
        """A psycopg connection (autocommit by default) to database ``name``; close it."""
        return psycopg.connect(autocommit=autocommit, **self.conninfo(name))

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (optionally as a copy of ``template``); return its URL.

        Nothing may be connected to ``template`` (PostgreSQL waits up to 5 s, then fails)."""
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(query)
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting whoever is still connected."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class ExternalPostgres(_PostgresAPI):
    """An existing server, from ``GATEWAY_TEST_POSTGRES_URL``; never started or stopped."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() not in ("postgresql", "postgres"):
            raise ValueError(f"{ENV_URL} is not a PostgreSQL URL: {parsed!r}")
        # The gateway uses psycopg 3; SQLAlchemy's default postgresql driver is psycopg2.
        self._base = parsed.set(
            drivername="postgresql+psycopg", database=parsed.database or "postgres"
        )

    def __repr__(self) -> str:
        return f"ExternalPostgres({self._base!r})"


class PostgresServerError(RuntimeError):
    pass


class PostgresServer(_PostgresAPI):
    """A throwaway PostgreSQL cluster in a temporary directory. ``start()``, then ``stop()``
    (also usable as a context manager). ``stop()`` removes every file it made."""

    def __init__(self, bindir: Path | str | None = None, *, start_timeout: float = 30.0) -> None:
        found = Path(bindir) if bindir is not None else find_bindir()
        if found is None:
            raise PostgresServerError(_missing_reason() or "PostgreSQL binaries not found")
        self.bindir = found
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.startup_seconds: float | None = None
        self._running = False
        self._base = URL.create("postgresql+psycopg", username=SUPERUSER, database="postgres")

    # -- paths -------------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "data"

    @property
    def logfile(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "server.log"

    @property
    def socket_dir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "socket"

    # -- running the binaries ----------------------------------------------------------------

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / program), *args]
        if _is_root():
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        proc = subprocess.run(
            cmd,
            cwd=self.tmpdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.start_timeout + 30,
        )
        if check and proc.returncode != 0:
            raise PostgresServerError(
                f"{program} failed with exit code {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr).strip()}{self._log_tail()}"
            )
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\n--- tail of {self.logfile} ---\n{tail}" if tail else ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        if self._running:
            return self
        began = time.monotonic()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        try:
            self.socket_dir.mkdir()
            if _is_root():
                # mkdtemp makes the directory 0700 root; the server runs as postgres.
                pw = pwd.getpwnam(SUPERUSER)
                for path in (self.tmpdir, self.socket_dir):
                    os.chown(path, pw.pw_uid, pw.pw_gid)
            self._run(
                "initdb",
                "-D", str(self.datadir),
                "-U", SUPERUSER,
                "--auth=trust",
                "-E", "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            )
            self._start_server()
        except BaseException:
            self._cleanup()
            raise
        self.startup_seconds = time.monotonic() - began
        atexit.register(self.stop)
        return self

    def _start_server(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            port = _free_port()
            settings = dict(SERVER_SETTINGS)
            settings["port"] = str(port)
            settings["unix_socket_directories"] = f"'{self.socket_dir}'"
            # postgresql.auto.conf is read last, so these win over postgresql.conf.
            conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
            (self.datadir / "postgresql.auto.conf").write_text(conf)
            proc = self._run(
                "pg_ctl",
                "-D", str(self.datadir),
                "-l", str(self.logfile),
                "-w",
                "-t", str(int(self.start_timeout)),
                "start",
                check=False,
            )
            if proc.returncode == 0:
                self.port = port
                self._base = self._base.set(host="127.0.0.1", port=port)
                self._running = True
                return
            log = self._log_tail()
            # Someone took the port between _free_port() and the bind: try another one.
            if "could not bind" in log or "Address already in use" in log:
                if attempt < attempts:
                    continue
            raise PostgresServerError(
                f"PostgreSQL did not start (pg_ctl exit code {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr).strip()}{log}"
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its temporary directory. Idempotent."""
        if self._running:
            self._running = False
            try:
                proc = self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop",
                                 check=False)
                if proc.returncode != 0:
                    self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w",
                              "stop", check=False)
            finally:
                self._cleanup()
        else:
            self._cleanup()
        atexit.unregister(self.stop)

    def _cleanup(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port {self.port}" if self._running else "stopped"
        return f"PostgresServer({self.bindir}, {state})"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_PostgresAPI]:
    """A PostgreSQL server for the whole test session: external, started, or skip/fail."""
    url = external_url()
    if url:
        yield ExternalPostgres(url)
        return
    reason = _missing_reason()
    if reason is not None:
        unavailable("PostgreSQL", reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
