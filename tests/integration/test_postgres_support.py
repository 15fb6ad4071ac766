"""The throwaway PostgreSQL server of tests/support/postgres.py works end to end."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres


def _connect(url: str) -> psycopg.Connection:
    u = make_url(url)
    return psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database,
        autocommit=True,
        connect_timeout=10,
    )


def test_url_is_sqlalchemy_psycopg(postgres_server) -> None:
    url = make_url(postgres_server.url)
    assert url.drivername == "postgresql+psycopg"
    assert make_url(postgres_server.database_url("abc")).database == "abc"


def test_server_answers(postgres_server) -> None:
    with _connect(postgres_server.url) as conn:
        (one,) = conn.execute("SELECT 1").fetchone()
        assert one == 1
        (encoding,) = conn.execute("SHOW server_encoding").fetchone()
        assert encoding == "UTF8"


def test_create_database_from_template_copies_tables(postgres_server) -> None:
    suffix = uuid.uuid4().hex[:12]
    template, copy = f"gw_tpl_{suffix}", f"gw_copy_{suffix}"
    try:
        template_url = postgres_server.create_database(template)
        with _connect(template_url) as conn:
            conn.execute("CREATE TABLE consent_rule (id serial PRIMARY KEY, agency text NOT NULL)")
            conn.execute("INSERT INTO consent_rule (agency) VALUES ('police'), ('health')")

        copy_url = postgres_server.create_database(copy, template=template)
        assert copy_url == postgres_server.database_url(copy)
        with _connect(copy_url) as conn:
            (regclass,) = conn.execute("SELECT to_regclass('public.consent_rule')").fetchone()
            assert regclass is not None
            rows = conn.execute("SELECT agency FROM consent_rule ORDER BY id").fetchall()
            assert rows == [("police",), ("health",)]
            # The copy is independent of the template.
            conn.execute("DELETE FROM consent_rule")
        with _connect(template_url) as conn:
            (count,) = conn.execute("SELECT count(*) FROM consent_rule").fetchone()
            assert count == 2
    finally:
        postgres_server.drop_database(copy)
        postgres_server.drop_database(template)

    with _connect(postgres_server.url) as conn:
        names = {
            name
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname IN (%s, %s)", (template, copy)
            )
        }
    assert names == set()


def test_drop_database_disconnects_sessions(postgres_server) -> None:
    name = f"gw_busy_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    conn = _connect(url)
    try:
        postgres_server.drop_database(name)
    finally:
        conn.close()
    postgres_server.drop_database(name)  # idempotent
