"""Engine set-up and the two kinds of transaction the gateway uses: read and write.

SQLite (the embedded default) runs in WAL mode with synchronous=FULL. It allows one writer at a
time; rather than let threads collide and sleep in SQLite's busy handler, writes in this process
queue on a lock and start with BEGIN IMMEDIATE. PostgreSQL needs neither: it has row locks, and
`advisory_lock` serialises the few check-then-insert paths (conditional create) across processes.
"""

import threading
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.errors import ServiceUnavailable


class Database:
    def __init__(self, url: str, pool_size: int = 10):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _sqlite_engine(self.url) if self.is_sqlite else _server_engine(self.url, pool_size)
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._translate_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if self._write_lock is None:
            with self._translate_errors(), self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self._translate_errors(), self.engine.connect() as conn:
            with conn.execution_options(sqlite_begin="IMMEDIATE").begin():
                yield conn

    def advisory_lock(self, conn: Connection, key: str) -> None:
        """Hold a lock named `key` until this transaction ends (PostgreSQL; SQLite has one writer)."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode())})

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            if exc.connection_invalidated or _is_unreachable(exc):
                raise ServiceUnavailable("The database is unreachable; retry shortly") from exc
            raise


def _is_unreachable(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return any(s in message for s in ("connection refused", "could not connect", "server closed", "database is locked"))


def _sqlite_engine(url) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _server_engine(url, pool_size: int) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800, hide_parameters=True)
