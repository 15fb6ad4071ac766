"""Database jobs: concurrent writes commit together but fail alone, on SQLite and PostgreSQL."""

import asyncio
import os
import sqlite3
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.errors import ServiceUnavailable
from gateway.store import deferred
from gateway.store.database import Database
from gateway.store.prepared import PreparedRows
from gateway.store.savepoint import Savepoint

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(50)))


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.run_write(lambda conn: metadata.create_all(conn))
    yield database
    database.dispose()


def note(text):
    return lambda conn: conn.execute(insert(notes).values(text=text))


def texts(db):
    return sorted(db.run_read(lambda conn: [r.text for r in conn.execute(select(notes))]))


def test_a_failing_job_is_rolled_back_alone_while_its_neighbours_commit(db):
    """Jobs awaited together on the event loop share one transaction, each in its own savepoint."""

    def half_then_fail(conn):
        conn.execute(insert(notes).values(text="half"))
        raise ValueError("refused")

    async def scenario():
        jobs = (note("a"), half_then_fail, note("b"))
        return await asyncio.gather(*(db.write(job) for job in jobs), return_exceptions=True)

    with commits(db) as committed:
        results = asyncio.run(scenario())
    assert isinstance(results[1], ValueError) and results[0] is not None and results[2] is not None
    assert texts(db) == ["a", "b"]
    if db.is_sqlite:  # one COMMIT for the three, and not on the event loop's thread
        assert len(committed) == 1 and committed[0] != threading.main_thread().name


@contextmanager
def commits(db):
    """The names of the threads that committed, one per COMMIT, while the block runs."""
    committed: list[str] = []

    def on_commit(_conn):
        committed.append(threading.current_thread().name)

    event.listen(db.engine, "commit", on_commit)
    try:
        yield committed
    finally:
        event.remove(db.engine, "commit", on_commit)


def test_a_failing_job_on_the_writer_thread_is_rolled_back_alone(db):
    """The same for jobs from other threads, grouped behind the one the writer is running."""
    gate = threading.Event()

    def hold_the_writer(conn):  # makes the next jobs queue up behind it, in one group
        conn.execute(insert(notes).values(text="first"))
        gate.wait(5)

    def half_then_fail(conn):
        conn.execute(insert(notes).values(text="half"))
        raise ValueError("refused")

    first = db.submit_write(hold_the_writer)
    time.sleep(0.05)
    queued = [db.submit_write(job) for job in (note("a"), half_then_fail, note("b"))]
    gate.set()
    first.result(5)
    assert isinstance(queued[1].exception(5), ValueError)
    assert queued[0].result(5) is not None and queued[2].result(5) is not None
    assert texts(db) == ["a", "b", "first"]


def test_rows_deferred_to_a_jobs_end_are_written_with_the_job_or_not_at_all(db):
    """Rows a job appends for its end (gateway.store.deferred) go in when it ends, after its own
    statements; a job that fails, or a savepoint in it that rolls back, takes its rows with it,
    and a neighbour in the same group keeps its own."""
    later = PreparedRows(notes, ["text"])
    gate = threading.Event()

    def hold_the_writer(conn):
        deferred.append(conn, later, [("held",)])
        gate.wait(5)

    def appends_then_fails(conn):
        deferred.append(conn, later, [("of the failed job",)])
        raise ValueError("refused")

    def keeps_some(conn):
        deferred.append(conn, later, [("kept",)])
        savepoint = Savepoint(conn)
        deferred.append(conn, later, [("undone",), ("undone too",)])
        savepoint.rollback()
        deferred.append(conn, later, [("kept too",)])
        conn.execute(insert(notes).values(text="at once"))
        return conn.execute(select(notes.c.text)).scalars().all()  # the deferred rows are not in yet

    first = db.submit_write(hold_the_writer)
    time.sleep(0.05)
    queued = [db.submit_write(job) for job in (appends_then_fails, keeps_some)]
    gate.set()
    first.result(5)
    assert isinstance(queued[0].exception(5), ValueError)
    seen = queued[1].result(5)
    written = db.run_read(lambda conn: conn.execute(select(notes.c.text).order_by(notes.c.id)).scalars().all())
    # Its own statement first, then what it deferred, in order; nothing of the failed job or of
    # the rolled-back savepoint.
    assert [text for text in written if text != "held"] == ["at once", "kept", "kept too"]
    assert [text for text in seen if text != "held"] == ["at once"]  # its deferred rows were not in yet
    if db.is_sqlite:  # one group, jobs in turn: the first job's deferred row went in when it ended
        assert seen == ["held", "at once"] and written == ["held", "at once", "kept", "kept too"]
    else:  # a transaction each, running at once: the first may commit before or after the read
        assert "held" in written
    with pytest.raises(RuntimeError, match="only within a write job"):  # outside one they would never go in
        db.run_read(lambda conn: deferred.append(conn, later, [("lost",)]))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_event_loop_never_waits_for_the_writer_thread(db):
    """SQLite: while another thread's job holds the write connection, the API's loop keeps serving
    (reads answer) and its own write is handed to the writer thread, committed after that job."""
    gate = threading.Event()

    def hold_the_writer(conn):
        conn.execute(insert(notes).values(text="held"))
        gate.wait(10)

    async def scenario():
        held = db.submit_write(hold_the_writer)
        await asyncio.sleep(0.05)
        write = asyncio.ensure_future(db.write(note("from the loop")))
        await asyncio.sleep(0.05)
        seen_meanwhile = await db.read(lambda conn: [r.text for r in conn.execute(select(notes))])
        pending_meanwhile = not write.done()
        gate.set()
        await write
        held.result(5)
        return seen_meanwhile, pending_meanwhile

    seen_meanwhile, pending_meanwhile = asyncio.run(scenario())
    assert seen_meanwhile == [] and pending_meanwhile
    in_order = db.run_read(lambda conn: [r.text for r in conn.execute(select(notes).order_by(notes.c.id))])
    assert in_order == ["held", "from the loop"]  # written after the held job, on the writer thread


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_writes_awaited_while_a_commit_is_under_way_commit_next_in_order(db):
    order = []

    def noted(text):
        def job(conn):
            order.append(text)
            conn.execute(insert(notes).values(text=text))
        return job

    async def scenario():
        first = [asyncio.ensure_future(db.write(noted(f"1-{i}"))) for i in range(3)]
        await asyncio.sleep(0)  # the first group begins and its commit goes to the commit thread
        second = [asyncio.ensure_future(db.write(noted(f"2-{i}"))) for i in range(3)]
        await asyncio.gather(*first, *second)

    with commits(db) as committed:
        asyncio.run(scenario())
    assert order == ["1-0", "1-1", "1-2", "2-0", "2-1", "2-2"]
    assert len(committed) == 2  # three and three: the second three waited for the first commit together
    assert texts(db) == sorted(order)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_group_whose_commit_fails_commits_nothing_and_the_next_write_works(db):
    """A deferred foreign key is checked at COMMIT: that commit fails, on the commit thread, and
    every job of its group gets the error; the write connection is replaced and works on."""
    db.run_write(lambda conn: conn.exec_driver_sql(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER "
        "REFERENCES notes(id) DEFERRABLE INITIALLY DEFERRED)"))

    def orphan(conn):
        conn.exec_driver_sql("INSERT INTO child (parent) VALUES (999)")

    async def scenario():
        return await asyncio.gather(db.write(note("lost")), db.write(orphan), return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, IntegrityError) for r in results)
    assert texts(db) == []
    asyncio.run(db.write(note("after")))
    assert texts(db) == ["after"]


def test_run_write_returns_the_jobs_value_and_reraises_its_error(db):
    assert db.run_write(lambda conn: 42) == 42
    with pytest.raises(ValueError):
        db.run_write(lambda conn: (note("gone")(conn), (_ for _ in ()).throw(ValueError("no")))[1])
    assert texts(db) == []


def test_many_concurrent_writers_lose_nothing(db):
    async def scenario():
        await asyncio.gather(*(db.write(note(f"n{i:03d}")) for i in range(200)))

    asyncio.run(scenario())
    assert texts(db) == [f"n{i:03d}" for i in range(200)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_finished_event_loop_is_not_kept_alive_by_its_writes(db):
    import gc
    import weakref

    loops = []

    async def scenario():
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await db.write(note("once"))

    asyncio.run(scenario())
    gc.collect()
    assert loops[0]() is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_event_loop_never_waits_for_another_processs_write_lock(db, tmp_path):
    """Another process writing (`gateway keys rotate`, say) holds SQLite's lock: the loop keeps
    running meanwhile, and its write is done by the writer thread once the lock is free."""
    other = sqlite3.connect(db.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(1.0, lambda: other.execute("COMMIT"))

    async def scenario():
        longest, last = 0.0, time.monotonic()
        write = asyncio.ensure_future(db.write(note("waited")))
        while not write.done():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
        await write
        return longest

    release.start()
    try:
        longest_stall = asyncio.run(scenario())
    finally:
        release.join()
        other.close()
    assert longest_stall < 0.5
    assert texts(db) == ["waited"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_write_after_the_database_is_disposed_of_is_refused_not_run(database_url):
    database = Database(database_url)
    database.run_write(lambda conn: metadata.create_all(conn))
    database.dispose()
    with pytest.raises(ServiceUnavailable):
        asyncio.run(database.write(note("too late")))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_writes_under_way_when_the_database_is_disposed_of_commit_or_are_refused(database_url):
    """Shutting down while writes are queued and one is running: the running group finishes and
    commits, the queued ones are refused (ServiceUnavailable). Each answer matches the disk."""
    database = Database(database_url)
    database.run_write(lambda conn: metadata.create_all(conn))
    running = threading.Event()

    def slow(conn):
        conn.execute(insert(notes).values(text="slow"))
        running.set()
        time.sleep(0.3)  # dispose() is called meanwhile

    futures = {"slow": database.submit_write(slow)}
    running.wait(5)
    futures.update({f"q{i}": database.submit_write(note(f"q{i}")) for i in range(20)})
    database.dispose()

    answered = {}
    for text, future in futures.items():
        error = future.exception(timeout=5)
        assert error is None or isinstance(error, ServiceUnavailable), repr(error)
        answered[text] = error is None
    assert answered["slow"]
    reopened = Database(database_url)
    try:
        assert texts(reopened) == sorted(t for t, ok in answered.items() if ok)
    finally:
        reopened.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_write_group_keeps_its_savepoint_journal_out_of_temporary_files(database_url):
    """Jobs grouped in one transaction each have a savepoint, whose journal holds images of the
    pages they change, index pages included (names, identifiers). None may reach a file outside
    the data directory, such as SQLite's /var/tmp temporary files."""
    indexed = MetaData()
    words = Table("words", indexed, Column("id", Integer, primary_key=True), Column("word", String(250), index=True))
    database = Database(database_url)
    database.run_write(lambda conn: indexed.create_all(conn))
    data_dir = str(Path(database.url.database).parent)
    outside = []

    def job(conn):  # random keys: each job changes index pages the jobs before it wrote
        conn.execute(insert(words), [{"word": os.urandom(100).hex()} for _ in range(300)])
        outside.extend(path for path in open_files() if not path.startswith(data_dir) and "etilqs" in path)

    async def scenario():
        await asyncio.gather(*(database.write(job) for _ in range(4)))

    try:
        asyncio.run(scenario())
    finally:
        database.dispose()
    assert outside == []


def open_files() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # closed since it was listed
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return found
