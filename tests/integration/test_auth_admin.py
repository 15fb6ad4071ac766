"""The admin API: the registry over HTTP, for a token with the `admin` scope."""

import pytest

from tests.support.agency_systems import FORM, AgencySystem, bearer, get_token, register_system, token_url


@pytest.fixture
def client(anonymous_client):
    """These tests send their own tokens, or none."""
    return anonymous_client


@pytest.fixture
def admin(services, client):
    scopes = "admin system/Organization.rs"  # the registry, and reading its Organizations over FHIR
    return bearer(get_token(client, register_system(services, client_id="ops", scopes=scopes), scopes))


QPS = {"id": "qps", "name": "Queensland Police Service", "type": "police", "jurisdiction": "QLD", "prescribed": ["qld-prescribed-entity"]}


def test_an_agency_is_registered_as_an_organization(client, admin):
    created = client.post("/admin/agencies", json=QPS, headers=admin)
    assert created.status_code == 201 and created.json()["fhir"] == "Organization/qps"
    assert client.post("/admin/agencies", json=QPS, headers=admin).status_code == 200  # the same again: nothing new
    organization = client.get("/fhir/Organization/qps", headers=admin).json()
    assert organization["name"] == "Queensland Police Service" and organization["type"][0]["coding"][0]["code"] == "police"
    assert {a["id"] for a in client.get("/admin/agencies", headers=admin).json()} == {"vicpol", "qps"}


@pytest.mark.parametrize(
    "change,field",
    [({"type": "spaceship"}, "type"), ({"jurisdiction": "NSW"}, "jurisdiction"), ({"prescribed": ["information-sharing-entity"]}, "prescribed"),
     ({"id": "no spaces"}, "id")],
)
def test_a_bad_agency_is_refused_naming_the_field(client, admin, change, field):
    answer = client.post("/admin/agencies", json={**QPS, **change}, headers=admin)
    assert answer.status_code in (400, 422) and answer.json()["resourceType"] == "OperationOutcome"
    assert field in answer.json()["issue"][0]["expression"][0]


def test_a_client_registered_over_the_api_gets_tokens_until_revoked(services, client, admin):
    client.post("/admin/agencies", json=QPS, headers=admin)
    system = AgencySystem("qps-crm", "ES384")
    added = client.post("/admin/clients", json={"client_id": "qps-crm", "agency": "qps", "scopes": "system/Task.rs", "jwks": system.jwks}, headers=admin)
    assert added.status_code == 201 and added.json()["key_ids"] == ["qps-crm-1"]
    assert client.post("/auth/token", data=system.token_form(token_url(client), "system/Task.rs"), headers=FORM).status_code == 200

    revoked = client.post("/admin/clients/qps-crm/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert client.post("/auth/token", data=system.token_form(token_url(client), "system/Task.rs"), headers=FORM).status_code == 401
    again = client.post("/admin/clients", json={"client_id": "qps-crm", "agency": "qps", "scopes": "system/Task.rs", "jwks": system.jwks}, headers=admin)
    assert again.status_code == 409  # a revoked id is never handed out again


def test_a_client_needs_a_registered_agency_and_public_keys(client, admin):
    system = AgencySystem("x")
    unknown = client.post("/admin/clients", json={"client_id": "x", "agency": "nobody", "scopes": "admin", "jwks": system.jwks}, headers=admin)
    assert unknown.status_code == 404
    private = {"keys": [system.key.as_dict(private=True)]}
    leaked = client.post("/admin/clients", json={"client_id": "x", "agency": "vicpol", "scopes": "admin", "jwks": private}, headers=admin)
    assert leaked.status_code == 400 and "public keys only" in leaked.json()["issue"][0]["diagnostics"]
    http = client.post("/admin/clients", json={"client_id": "x", "agency": "vicpol", "scopes": "admin", "jwks_url": "http://keys.example.org/jwks"}, headers=admin)
    assert http.status_code == 400 and "https" in http.json()["issue"][0]["diagnostics"]


def test_signing_key_rotation_and_security_events(client, admin):
    rotated = client.post("/admin/signing-keys/rotate", headers=admin).json()
    assert rotated["kid"] and len(rotated["retired"]) == 1 and rotated["deleted"] == []
    client.get("/admin/clients", headers=bearer("nonsense"))
    events = client.get("/admin/security-events", params={"limit": 5}, headers=admin).json()
    assert events[0]["kind"] == "access-refused" and events[0]["reason"] == "malformed-token"
