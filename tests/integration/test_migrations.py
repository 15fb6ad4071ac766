"""A database made by an older revision upgrades in place and keeps its records."""

import asyncio
import uuid

import orjson
import pytest
from sqlalchemy import inspect

from gateway.bootstrap import build_services
from gateway.store import migrate
from gateway.store.database import Database
from tests.support.resources import FHIR_JSON, patient


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path):
    """A database with no schema at all (the shared fixtures hand out migrated ones)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"m_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    yield server.database_url(name)
    server.drop_database(name)


def test_upgrading_from_the_first_revision_keeps_data_and_search(tmp_path, empty_database_url, data_key):
    from gateway.settings import Settings

    database_url = empty_database_url
    settings = Settings(data_dir=tmp_path, database_url=database_url, data_key=data_key)
    from fastapi.testclient import TestClient

    from gateway.api.app import create_app

    old = Database(database_url)
    migrate.upgrade(old, "0001")
    indexes = {i["name"] for i in inspect(old.engine).get_indexes("resource_versions")}
    assert "ix_resource_versions_key" in indexes
    old.dispose()
    # a record written while the database is at revision 0001 survives the upgrade
    first = build_services(settings, upgrade_schema=False)
    earlier = asyncio.run(first.fhir.create("Patient", orjson.dumps(patient(identifier="OLD-1")), "http://x/fhir"))
    old_id = orjson.loads(earlier.body)["id"]
    first.close()

    services = build_services(settings)  # upgrades to head
    try:
        with TestClient(create_app(services)) as client:
            created = client.post("/fhir/Patient", content=orjson.dumps(patient(identifier="MIG-1")), headers=FHIR_JSON).json()
            assert client.get("/fhir/Patient", params={"identifier": "MIG-1"}).json()["total"] == 1
            assert client.get("/fhir/Patient", params={"birthdate": "ge1980"}).json()["total"] == 2  # old and new
            assert client.get(f"/fhir/Patient/{created['id']}").status_code == 200
            assert client.get(f"/fhir/Patient/{old_id}").json()["identifier"][0]["value"] == "OLD-1"
            assert client.get("/fhir/Patient", params={"identifier": "OLD-1"}).json()["total"] == 1
        indexes = {i["name"] for i in inspect(services.db.engine).get_indexes("resource_versions")}
        assert "ix_resource_versions_key" not in indexes
    finally:
        services.close()
