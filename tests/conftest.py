"""Shared pytest fixtures for the gateway tests.

`services` and `client` are parametrised over the embedded default (SQLite) and a real
PostgreSQL, so every contract test runs on both. Each test gets a fresh database: a new SQLite
file, or a PostgreSQL database copied from a migrated template.

Every API route but the open ones needs an access token, so `client` carries one by default:
agency dfv-logan's test system with every scope (see `tests.support.agency_systems.agency_token`).
dfv-logan leads the worked case and is on the team of every case the tests refer, so tests of
the FHIR store and the case API stay about what they test. `anonymous_client` carries none, for
tests that send their own tokens (or none at all).
"""

import os
import uuid

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.bootstrap import build_services
from gateway.fhir import acceptance
from gateway.settings import Settings
from gateway.store import migrate
from gateway.store.database import Database
from gateway.store.encryption import generate_kek
from tests.support.agency_systems import bearer, agency_token
from tests.support.hapi import hapi_validator  # noqa: F401  (fixtures shared by every test module)
from tests.support.kafka import kafka_broker  # noqa: F401  (one broker for the whole session)
from tests.support.postgres import postgres_server  # noqa: F401
from tests.support.resources import fhir_resources_accepts

TEMPLATE = "gateway_template"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    """Tests never inherit a developer's GATEWAY_* settings."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_") and not name.startswith("GATEWAY_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _fast_path_answers_to_fhir_resources():
    """Every resource an in-process test validates is also given to fhir.resources: validation's
    fast path (gateway.fhir.acceptance) must never accept what fhir.resources refuses."""
    fast = acceptance.accepts
    wrongly_accepted = []

    def checked(data: dict) -> bool:
        accepted = fast(data)
        if accepted and not fhir_resources_accepts(data):
            wrongly_accepted.append(data)
        return accepted

    acceptance.accepts = checked
    yield
    acceptance.accepts = fast
    assert not wrongly_accepted, f"the compiled check accepted {len(wrongly_accepted)} invalid: {wrongly_accepted[:3]}"


@pytest.fixture(scope="session")
def data_key() -> str:
    return generate_kek()


@pytest.fixture(scope="session")
def postgres_template(postgres_server):  # noqa: F811
    postgres_server.create_database(TEMPLATE)
    db = Database(postgres_server.database_url(TEMPLATE))
    migrate.upgrade(db)
    db.dispose()  # nothing may stay connected to a template that is being copied
    yield postgres_server
    postgres_server.drop_database(TEMPLATE)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    server = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    server.create_database(name, template=TEMPLATE)
    yield server.database_url(name)
    server.drop_database(name)


@pytest.fixture
def settings(tmp_path, database_url, data_key) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, data_key=data_key, key_cache_seconds=0.2)


@pytest.fixture
def services(settings):
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def anonymous_client(services):
    with TestClient(create_app(services), base_url="http://gateway.test") as test_client:
        yield test_client


@pytest.fixture
def client(services):
    with TestClient(create_app(services), base_url="http://gateway.test") as test_client:
        test_client.headers.update(bearer(agency_token(services, test_client)))
        yield test_client
