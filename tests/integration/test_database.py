"""Database jobs: concurrent writes commit together but fail alone, on SQLite and PostgreSQL."""

import asyncio
import threading

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from gateway.store.database import Database

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
    gate = threading.Event()

    def hold_the_writer(conn):  # makes the next jobs queue up behind it, in one group
        conn.execute(insert(notes).values(text="first"))
        gate.wait(5)

    def half_then_fail(conn):
        conn.execute(insert(notes).values(text="half"))
        raise ValueError("refused")

    async def scenario():
        first = asyncio.ensure_future(db.write(hold_the_writer))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(db.write(job)) for job in (note("a"), half_then_fail, note("b"))]
        await asyncio.sleep(0.05)
        gate.set()
        await first
        return await asyncio.gather(*queued, return_exceptions=True)

    results = asyncio.run(scenario())
    assert isinstance(results[1], ValueError) and results[0] is not None and results[2] is not None
    assert texts(db) == ["a", "b", "first"]


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
