"""Engine set-up and how work reaches the database: read jobs and write jobs.

A job is a function of one connection, run inside one transaction. Callers either wait for it
(`run_read`, `run_write`: the CLI and tests) or await it (`read`, `write`: the API's event loop).

SQLite (the embedded default) allows one writer, and every commit in WAL mode with
synchronous=FULL costs an fsync. So write jobs that are waiting share one transaction (group
commit; see gateway.store.sqlite_writes): on the event loop for the jobs it awaits, on a writer
thread for everyone else's. Reads run inline on the event loop: they are short, and WAL lets
them proceed beside the writer.

PostgreSQL runs jobs on a thread pool, one transaction each; it commits concurrent
transactions in parallel by itself. `advisory_lock` serialises the few check-then-insert paths
(conditional create) across processes.
"""

import asyncio
import logging
import sqlite3
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.errors import ServiceUnavailable
from gateway.store.deferred import run_job
from gateway.store.sqlite_writes import BUSY_TIMEOUT_MS, LoopWrites, ThreadWrites, WriteConnection, discard

T = TypeVar("T")
Job = Callable[[Connection], T]
log = logging.getLogger("gateway.store")


class Database:
    def __init__(self, url: str, pool_size: int = 10):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._inline: Connection | None = None  # see _read_inline
        self._inline_owner: threading.Thread | None = None
        self._inline_lock = threading.Lock()
        self._end_listeners: list[Callable[[dict], None]] = []
        self._shared: dict[type, object] = {}
        self._shared_lock = threading.Lock()
        if self.is_sqlite:
            self.engine = _sqlite_engine(self.url)
            self._write_connection = WriteConnection(self.engine, self._transaction_ended)
            self._writer: ThreadWrites | None = ThreadWrites(self._write_connection, self._translate_errors)
            self._loop_writes: LoopWrites | None = LoopWrites(self._write_connection, self._writer, self._translate_errors)
            self._pool = None
        else:
            self.engine = _server_engine(self.url, pool_size)
            self._writer = self._loop_writes = None
            self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="db")

    # -- jobs ---------------------------------------------------------------------------------

    def submit_write(self, job: Job[T]) -> "Future[T]":
        if self._writer is not None:
            return self._writer.submit(job)
        return self._pool.submit(self._run_in_transaction, job)

    def run_write(self, job: Job[T]) -> T:
        return self.submit_write(job).result()

    async def write(self, job: Job[T]) -> T:
        if self._loop_writes is not None:
            return await self._loop_writes.write(job)
        return await asyncio.wrap_future(self.submit_write(job))

    def run_read(self, job: Job[T]) -> T:
        with self._translate_errors(), self.engine.connect() as conn, conn.begin():
            return job(conn)

    async def read(self, job: Job[T]) -> T:
        if self._pool is None:
            return self._read_inline(job)
        return await asyncio.wrap_future(self._pool.submit(self.run_read, job))

    def _read_inline(self, job: Job[T]) -> T:
        """A read on the event loop (SQLite), on a connection that loop keeps between reads:
        checking one out of the pool and back cost about as much as a primary-key read.
        Only the first thread to read inline keeps one (the server's event loop); any other
        thread's read takes a pooled connection as `run_read` does."""
        conn = self._inline_connection()
        if conn is None:
            return self.run_read(job)
        try:
            with self._translate_errors(), conn.begin():
                return job(conn)
        except ServiceUnavailable:
            self._drop_inline_connection()
            raise

    def _inline_connection(self) -> Connection | None:
        if self._inline_owner is None:
            with self._inline_lock:  # two threads reading first at once must not share it
                if self._inline_owner is None:
                    self._inline_owner = threading.current_thread()
        if self._inline_owner is not threading.current_thread():
            return None
        if self._inline is None or self._inline.closed:
            self._inline = self.engine.connect()
        return self._inline

    def _drop_inline_connection(self) -> None:
        conn, self._inline = self._inline, None
        discard(conn)

    def _run_in_transaction(self, job: Job[T]) -> T:
        with self._translate_errors(), self.engine.connect() as conn:
            try:
                with conn.begin():
                    return run_job(conn, job)
            finally:  # before the connection goes back to the pool, where another job could use its info
                self._transaction_ended(conn.info)

    def on_transaction_end(self, listener: Callable[[dict], None]) -> None:
        """Call `listener(info)` once each write transaction has ended (committed or not), with its
        connection's `info`, where a job can leave word for it (as the embedded queue's publishes do)."""
        self._end_listeners.append(listener)

    def shared(self, kind: Callable[["Database"], T]) -> T:
        """The one `kind(self)` of this database, made on first use: for what every user of the
        database in this process must share (the wake-ups its transactions' ends send)."""
        with self._shared_lock:
            found = self._shared.get(kind)
            if found is None:
                found = self._shared[kind] = kind(self)
            return found

    def _transaction_ended(self, info: dict) -> None:
        for listener in self._end_listeners:
            try:
                listener(info)
            except Exception:  # the transaction has ended either way: its outcome must not change
                log.exception("a transaction-end listener failed")

    # -- helpers --------------------------------------------------------------------------------

    def advisory_lock(self, conn: Connection, key: str) -> None:
        """Hold a lock named `key` until this transaction ends (PostgreSQL; SQLite has one writer)."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode())})

    def ping(self) -> None:
        self.run_read(lambda conn: conn.execute(text("SELECT 1")))

    def dispose(self) -> None:
        if self._writer is not None:
            # Groups waiting are refused from here on; the group each thread is running ends (and
            # commits) first, and only then is the connection closed under them.
            self._write_connection.refuse_new_groups()
            self._writer.stop()
            self._loop_writes.stop()
            self._write_connection.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._drop_inline_connection()
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
        # temp_store=MEMORY: a write group's savepoints journal the pages they change (search
        # index pages hold names and identifiers in the clear), and past 64 KiB SQLite spills that
        # journal to a file in /var/tmp, outside the data directory; in memory it stays ours, and
        # no file is made and deleted per group.
        pragmas = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}", "temp_store=MEMORY")
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # On the DBAPI connection itself: through exec_driver_sql, SQLAlchemy's statement
        # machinery cost more than the BEGIN (it ran once per read and once per write group).
        statement = f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}"
        try:
            conn.connection.dbapi_connection.execute(statement)
        except sqlite3.Error as error:  # as SQLAlchemy would raise it, so callers see one kind of error
            raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error

    return engine


def _server_engine(url, pool_size: int) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800, hide_parameters=True)
