"""SQLite's one writer: write jobs grouped into shared transactions (group commit).

SQLite allows one writer, and every commit in WAL mode with synchronous=FULL costs an fsync. So
all write jobs share one connection, given to one group of jobs at a time by `WriteConnection`'s
lock, and every job that is waiting joins the group's transaction: each job runs in its own
savepoint, so one job's failure rolls back only that job, and one fsync makes the group durable.

Groups run in one of two places:

- `LoopWrites`: jobs awaited on an event loop (the API's) run on that loop itself, and only the
  COMMIT, which waits on the disk, goes to a thread. A job is Python work that releases the GIL
  at every statement; on a writer thread each of those releases waited for the busy event loop
  to hand the GIL back, so a create spent more time queueing for the GIL than working
  (measured: ~1.5 ms of a 4-5 ms group of three creates was GIL waits at BEGIN alone).
- `ThreadWrites`: jobs from any other thread (the messaging worker, the CLI, tests) run on the
  writer thread, as do a loop's jobs when that thread holds the connection (the loop never
  blocks on the lock).
"""

import asyncio
import logging
import queue
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine, RootTransaction
from sqlalchemy.exc import OperationalError

from gateway.errors import ServiceUnavailable
from gateway.store.deferred import run_job
from gateway.store.savepoint import Savepoint

T = TypeVar("T")
Job = Callable[[Connection], T]
log = logging.getLogger("gateway.store")
MAX_GROUP = 64  # write jobs committed together at most
BUSY_TIMEOUT_MS = 30_000  # how long a writer thread waits for another process's write lock
Outcome = tuple[object, BaseException | None]  # a job's value, or the error it raised


class WriteConnection:
    """The one write connection (BEGIN IMMEDIATE), and the lock that lends it to one group at a time.

    It is kept open between groups (a pool checkout per group cost more than a small group's SQL)
    and replaced after a group fails. `ended(info)` is told when each transaction has ended, with
    the connection's `info` (see Database.on_transaction_end)."""

    def __init__(self, engine: Engine, ended: Callable[[dict], None]):
        self.lock = threading.Lock()
        self._engine = engine
        self._ended = ended
        self._conn: Connection | None = None
        self._waits = True  # the connection's busy_timeout is SQLite's 30 s (see database._sqlite_engine)
        self.closed = False

    def begin_group(self, jobs: list[Job], wait: bool = True) -> tuple[RootTransaction, list[Outcome]]:
        """BEGIN and run `jobs`, holding `lock`; the transaction is left open for the caller to
        `commit`. Alone, a job runs bare: its failure is raised here, the transaction rolled back.
        In a group, each job has a savepoint and its own outcome.

        `wait=False`: if another process holds SQLite's write lock, raise `Busy` at once, before
        any job ran, rather than wait (SQLite's busy handler sleeps in the calling thread)."""
        conn = self._connection()
        try:
            self._wait_when_busy(conn, wait)
            transaction = conn.begin()
        except OperationalError as error:
            self.drop()
            if not wait and "database is locked" in str(error.orig):
                raise Busy() from error
            raise
        except BaseException:
            self.drop()
            raise
        try:
            if len(jobs) == 1:
                return transaction, [(run_job(conn, jobs[0]), None)]
            return transaction, [_run_in_savepoint(conn, job) for job in jobs]
        except BaseException:
            self.rollback(transaction)
            raise

    def commit(self, transaction: RootTransaction) -> None:
        info = transaction.connection.info
        try:
            transaction.commit()
        except BaseException:
            self.drop()
            raise
        finally:
            self._ended(info)

    def rollback(self, transaction: RootTransaction) -> None:
        info = transaction.connection.info
        try:
            transaction.rollback()
        except BaseException:
            self.drop()
        finally:
            self._ended(info)

    def drop(self) -> None:
        """Discard the connection: never back to the pool, which would take it as it is (a failed
        COMMIT leaves SQLite's transaction open)."""
        conn, self._conn = self._conn, None
        discard(conn)

    def refuse_new_groups(self) -> None:
        """The database is being disposed of: a group not yet begun is answered ServiceUnavailable."""
        self.closed = True

    def close(self) -> None:
        """Once the groups under way have ended: waits for the lock, so none loses its connection mid-job."""
        self.refuse_new_groups()
        with self.lock:
            self.drop()

    def _connection(self) -> Connection:
        if self.closed:
            raise ShuttingDown()
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(sqlite_begin="IMMEDIATE")
            self._waits = True
        return self._conn

    def _wait_when_busy(self, conn: Connection, wait: bool) -> None:
        if wait != self._waits:
            conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS if wait else 0}")
            self._waits = wait


def discard(conn: Connection | None) -> None:
    """Close `conn` for good: invalidated, so the pool never hands it out again as it is."""
    if conn is not None:
        with suppress(Exception):  # a broken connection may not close cleanly; it is gone either way
            conn.invalidate()
            conn.close()


@dataclass
class ShuttingDown(ServiceUnavailable):
    """The database is being disposed of: a write not yet begun is refused, not run."""

    message: str = "The gateway is shutting down; retry shortly"


class Busy(Exception):
    """Another process holds SQLite's write lock (only raised to a caller that would not wait)."""


class ThreadWrites:
    """The writer thread: runs the jobs waiting in its queue as one group, then the next."""

    def __init__(self, writes: WriteConnection, errors: Callable[[], AbstractContextManager]):
        self._writes = writes
        self._errors = errors  # translates driver errors (Database._translate_errors)
        self._jobs: "queue.SimpleQueue[tuple[Job, Future] | None]" = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: Job[T]) -> "Future[T]":
        future: Future = Future()
        self._ensure_started()
        self._jobs.put((job, future))
        return future

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="sqlite-writer", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._jobs.put(None)  # stop after this group
                    break
                group.append(item)
            self._commit_group(group)

    def _commit_group(self, group: list[tuple[Job, Future]]) -> None:
        try:
            with self._writes.lock, self._errors():
                transaction, outcomes = self._writes.begin_group([job for job, _ in group])
                self._writes.commit(transaction)
        except BaseException as exc:  # nothing of the group was committed
            _failed(len(group), exc)
            _settle(group, None, exc)
            return
        _settle(group, outcomes, None)


class LoopWrites:
    """Write jobs awaited on event loops, grouped per loop and run on it; commits on a thread.

    A loop's jobs that arrive while its previous group commits wait, and go together as the next
    group once that commit is done, so the loop keeps serving requests meanwhile."""

    def __init__(self, writes: WriteConnection, thread: ThreadWrites, errors: Callable[[], AbstractContextManager]):
        self._writes = writes
        self._thread = thread
        self._errors = errors
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._lanes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane]" = weakref.WeakKeyDictionary()

    async def write(self, job: Job[T]) -> T:
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(loop)
        if lane is None:
            lane = self._lanes[loop] = _Lane(self, loop)
        return await lane.submit(job)

    def stop(self) -> None:
        """After this, a write is answered ServiceUnavailable (WriteConnection.close follows)."""
        self._committer.shutdown(wait=True)


class _Lane:
    """One event loop's share of LoopWrites (used on that loop only, so it needs no lock)."""

    def __init__(self, writes: LoopWrites, loop: asyncio.AbstractEventLoop):
        self._owner = writes
        self._loop = weakref.proxy(loop)  # the lanes are keyed by loop, weakly: a lane must not keep its loop alive
        self._waiting: list[tuple[Job, asyncio.Future]] = []
        self._committing = False
        self._scheduled = False

    def submit(self, job: Job[T]) -> "asyncio.Future[T]":
        future = self._loop.create_future()
        self._waiting.append((job, future))
        if not self._scheduled and not self._committing:
            self._scheduled = True
            self._loop.call_soon(self._flush)  # after this loop pass: jobs submitted in it join the group
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if self._committing or not self._waiting:
            return
        group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
        owner = self._owner
        if not owner._writes.lock.acquire(blocking=False):
            self._hand_to_thread(group)  # the writer thread has the connection: never block the loop
        else:
            self._run(group)
        if self._waiting and not self._committing:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _run(self, group: list[tuple[Job, asyncio.Future]]) -> None:
        """Holding the write lock: the jobs here, the COMMIT on the commit thread (which frees the lock)."""
        writes = self._owner._writes
        try:
            with self._owner._errors():
                transaction, outcomes = writes.begin_group([job for job, _ in group], wait=False)
        except Busy:  # another process writes (`gateway keys rotate`, say): its wait belongs on the writer thread
            writes.lock.release()
            self._hand_to_thread(group)
            return
        except BaseException as exc:  # a lone job failed, or the transaction could not begin (rolled back)
            writes.lock.release()
            _settle(group, None, exc)
            return
        try:
            self._owner._committer.submit(self._commit, transaction, group, outcomes)
        except RuntimeError:  # the commit thread is gone (shutting down): nothing is committed
            writes.rollback(transaction)
            writes.lock.release()
            _settle(group, None, ShuttingDown())
            return
        self._committing = True

    def _commit(self, transaction: RootTransaction, group, outcomes: list[Outcome]) -> None:
        """On the commit thread: COMMIT (the fsync), free the connection, and tell the loop.

        Told in one hop (call_soon_threadsafe); awaiting run_in_executor's future took two, and
        its concurrent future's condition lock besides, on the path every group waits on."""
        error = None
        try:
            with self._owner._errors():
                self._owner._writes.commit(transaction)
        except BaseException as exc:  # the group's jobs get it
            error = exc
        finally:
            self._owner._writes.lock.release()
        with suppress(ReferenceError, RuntimeError):  # the loop has gone, or closed, and nobody awaits the group
            self._loop.call_soon_threadsafe(self._committed, group, outcomes, error)

    def _committed(self, group, outcomes: list[Outcome], error: BaseException | None) -> None:
        self._committing = False
        if error is not None:
            _failed(len(group), error)
        _settle(group, outcomes, error)
        if self._waiting and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _hand_to_thread(self, group: list[tuple[Job, asyncio.Future]]) -> None:
        for job, future in group:
            _chain(self._owner._thread.submit(job), future, self._loop)


def _settle(group, outcomes: list[Outcome] | None, error: BaseException | None) -> None:
    """Answer each job's future (asyncio's or concurrent's): the transaction's error if it
    failed, else the job's own outcome."""
    for index, (_job, future) in enumerate(group):
        if future.cancelled():
            continue
        value, own_error = (None, error) if error is not None else outcomes[index]
        if own_error is None:
            future.set_result(value)
        else:
            future.set_exception(own_error)


def _chain(source: Future, target: asyncio.Future, loop: asyncio.AbstractEventLoop) -> None:
    def copy(done: Future) -> None:
        if target.cancelled():
            return
        error = done.exception()
        if error is None:
            target.set_result(done.result())
        else:
            target.set_exception(error)

    def hand_back(done: Future) -> None:
        with suppress(ReferenceError, RuntimeError):  # the loop has gone, or closed, and nobody awaits it
            loop.call_soon_threadsafe(copy, done)

    source.add_done_callback(hand_back)


def _failed(size: int, exc: BaseException) -> None:
    if size > 1 and not isinstance(exc, ShuttingDown):  # refused at shutdown: not a fault to report
        log.error("write group of %d failed to commit: %s", size, type(exc).__name__)


def _run_in_savepoint(conn: Connection, job: Job) -> Outcome:
    savepoint = Savepoint(conn)
    try:
        value = run_job(conn, job)
    except Exception as exc:  # this job alone is rolled back; its caller gets the error
        savepoint.rollback()
        return None, exc
    savepoint.release()
    return value, None
