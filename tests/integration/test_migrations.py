"""A database made by an older revision upgrades in place and keeps its records."""

import asyncio
import uuid
from contextlib import contextmanager

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import bindparam, inspect, insert, null, select

from gateway.api.app import create_app
from gateway.bootstrap import build_services
from gateway.domain.agencies import Agency
from gateway.domain.vocabulary import AgencyType, Jurisdiction
from gateway.settings import Settings
from gateway.store import case_links, change_marks, migrate, resources, search_sql
from gateway.store.database import Database
from gateway.store.prepared import Prepared
from gateway.store.schema import pending_backfills
from gateway.store.schema import resource_versions as rv
from tests.support import cases
from tests.support.agency_systems import AgencySystem, agency_token, bearer, get_token
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


@contextmanager
def store_before_0007(monkeypatch):
    """The store's statements as they were before revision 0007 gave each version its holder
    (and before 0009 kept change marks)."""
    columns = [c for c in rv.columns if c.name != "holder"]

    with monkeypatch.context() as before:
        before.setattr(search_sql, "VERSION_COLUMNS", (*columns, null().label("holder")))
        before.setattr(change_marks, "WATCHED", {})
        before.setattr(resources, "_INSERT_VERSION", Prepared(insert(rv), [c.name for c in columns]))
        before.setattr(resources, "_SELECT_CURRENT_BODY", Prepared(
            search_sql.current_versions().where(rv.c.resource_type == bindparam("t"), rv.c.resource_id == bindparam("i"))
        ))
        search_sql._plan.cache_clear()  # searches compiled with today's columns
        try:
            yield before
        finally:
            search_sql._plan.cache_clear()


def test_upgrading_from_the_first_revision_keeps_data_and_search(tmp_path, empty_database_url, data_key, monkeypatch):
    database_url = empty_database_url
    settings = Settings(data_dir=tmp_path, database_url=database_url, data_key=data_key)
    old = Database(database_url)
    migrate.upgrade(old, "0001")
    indexes = {i["name"] for i in inspect(old.engine).get_indexes("resource_versions")}
    assert "ix_resource_versions_key" in indexes
    old.dispose()
    # a record written while the database is at revision 0001 survives the upgrade
    with store_before_0007(monkeypatch):
        first = build_services(settings, upgrade_schema=False)
        earlier = asyncio.run(first.fhir.create("Patient", orjson.dumps(patient(identifier="OLD-1")), "http://x/fhir"))
        old_id = orjson.loads(earlier.body)["id"]
        first.close()

    services = build_services(settings)  # upgrades to head
    try:
        with TestClient(create_app(services)) as client:
            client.headers.update(bearer(agency_token(services, client)))
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


def test_cases_stored_before_case_access_are_closed_to_other_agencies_after_the_upgrade(tmp_path, empty_database_url, data_key, monkeypatch):
    settings = Settings(data_dir=tmp_path, database_url=empty_database_url, data_key=data_key)
    old = Database(empty_database_url)
    migrate.upgrade(old, "0005")
    old.dispose()
    with store_before_0007(monkeypatch) as before_0006:  # the code of revision 0005 kept no case links
        before_0006.setattr(case_links, "relink", lambda *args, **kwargs: None)
        first = build_services(settings, upgrade_schema=False)
        cases.open_case(first)  # the worked case: its people, team, consents, forms
        first.close()

    services = build_services(settings)  # upgrades to head, then derives the links with the data key
    try:
        assert services.db.run_read(lambda conn: conn.execute(select(pending_backfills)).all()) == []
        services.identity.agencies.add(Agency("nsw-health", "Another agency", AgencyType.HEALTH, Jurisdiction.VIC))
        outsider = AgencySystem("outsider", "ES256")
        services.identity.clients.add("outsider", "nsw-health", "system/*.rs", jwks=outsider.jwks)
        with TestClient(create_app(services)) as client:
            lead = bearer(agency_token(services, client))
            other = bearer(get_token(client, outsider, "system/*.rs"))
            case = f"/fhir/EpisodeOfCare/{cases.CASE_ID}"
            assert client.get(case, headers=lead).status_code == 200
            assert client.get(case, headers=other).status_code == 403
            for kind, query in (("Patient", {}), ("Consent", {}), ("CareTeam", {}), ("QuestionnaireResponse", {})):
                assert client.get(f"/fhir/{kind}", params={**query, "_count": 0}, headers=lead).json()["total"] >= 1, kind
                assert client.get(f"/fhir/{kind}", params={**query, "_count": 0}, headers=other).json()["total"] == 0, kind
    finally:
        services.close()
