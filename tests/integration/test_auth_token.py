"""SMART Backend Services as an agency's system meets it: discovery, token, use, key rotation."""

import json
import time

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from gateway.auth.scopes import ScopeSet
from tests.support.agency_systems import FORM, bearer, get_token, register_system, token_url


@pytest.fixture
def client(anonymous_client):
    """These tests send their own tokens, or none."""
    return anonymous_client


def claims_of(token: str) -> tuple[dict, dict]:
    parsed = jws.extract_compact(token.encode())
    return parsed.headers(), json.loads(parsed.payload)


class TestDiscovery:
    @pytest.mark.parametrize("path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"])
    def test_smart_configuration_names_the_token_endpoint_and_what_it_accepts(self, client, path):
        config = client.get(path).json()
        assert config["token_endpoint"] == "http://gateway.test/auth/token"
        assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
        assert config["grant_types_supported"] == ["client_credentials"]
        assert "client-confidential-asymmetric" in config["capabilities"] and "permission-v2" in config["capabilities"]
        assert config["jwks_uri"] == "http://gateway.test/.well-known/jwks.json"

    def test_the_jwks_publishes_public_keys_only(self, client):
        keys = client.get("/.well-known/jwks.json").json()["keys"]
        assert len(keys) == 1 and keys[0]["kid"] and keys[0]["alg"] == "ES256"
        assert "d" not in keys[0]


class TestToken:
    @pytest.mark.parametrize("alg", ["RS384", "ES384", "RS256", "ES256"])
    def test_a_registered_system_gets_a_signed_token_with_its_scopes_and_agency(self, services, client, alg):
        system = register_system(services, alg=alg, scopes="system/Task.cruds admin")
        answer = client.post("/auth/token", data=system.token_form(token_url(client), "system/Task.rs"), headers=FORM)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 300 and body["scope"] == "system/Task.rs"
        header, claims = claims_of(body["access_token"])
        assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
        assert claims["agency"] == "vicpol" and claims["client_id"] == claims["sub"] == system.client_id
        assert claims["scope"] == "system/Task.rs" and claims["iss"] == claims["aud"] == "http://gateway.test"
        assert 0 < claims["exp"] - time.time() <= 300

    def test_anyone_can_verify_a_token_with_the_published_jwks(self, services, client):
        token = get_token(client, register_system(services))
        keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
        assert jwt.decode(token, keys, algorithms=["ES256"]).claims["agency"] == "vicpol"

    def test_the_token_opens_the_admin_api(self, services, client):
        token = get_token(client, register_system(services), scope="admin")
        answer = client.get("/admin/clients", headers=bearer(token))
        assert answer.status_code == 200
        assert [c["client_id"] for c in answer.json()] == ["vicpol-lead"]

    def test_a_token_without_the_admin_scope_is_forbidden_there(self, services, client):
        token = get_token(client, register_system(services), scope="system/Task.rs")
        answer = client.get("/admin/agencies", headers=bearer(token))
        assert answer.status_code == 403
        assert answer.json()["issue"][0]["code"] == "forbidden"
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]

    def test_no_token_is_a_401_operation_outcome_with_a_challenge(self, client):
        answer = client.get("/admin/agencies")
        assert answer.status_code == 401
        assert answer.json()["resourceType"] == "OperationOutcome" and answer.json()["issue"][0]["code"] == "login"
        assert answer.headers["www-authenticate"].startswith("Bearer")

    def test_a_verified_token_is_served_from_the_cache(self, services, client):
        token = get_token(client, register_system(services), scope="admin")
        assert services.identity.access.cached(token, "http://gateway.test") is None
        client.get("/admin/clients", headers=bearer(token))
        caller = services.identity.access.cached(token, "http://gateway.test")
        assert caller.agency_id == "vicpol" and caller.scopes.has("admin") and caller.token_id


class TestScopes:
    def test_a_wider_request_is_narrowed_to_the_registration(self, services, client):
        system = register_system(services, scopes="system/Task.rs system/Patient.r")
        answer = client.post("/auth/token", data=system.token_form(token_url(client), "system/*.cruds admin"), headers=FORM)
        assert answer.status_code == 200
        assert answer.json()["scope"] == "system/Task.rs system/Patient.r"
        granted = ScopeSet.parse(claims_of(answer.json()["access_token"])[1]["scope"])
        assert granted.allows("Task", "search") and not granted.allows("Task", "create") and not granted.has("admin")

    def test_nothing_grantable_is_invalid_scope(self, services, client):
        system = register_system(services, scopes="system/Task.rs")
        answer = client.post("/auth/token", data=system.token_form(token_url(client), "admin audit"), headers=FORM)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_scope"

    @pytest.mark.parametrize("scope", ["", "user/Task.rs"])
    def test_a_missing_or_user_scope_is_invalid_scope(self, services, client, scope):
        system = register_system(services)
        answer = client.post("/auth/token", data=system.token_form(token_url(client), scope), headers=FORM)
        assert answer.json()["error"] == "invalid_scope"


class TestRequestShape:
    def test_errors_are_oauth_json_not_operation_outcomes(self, client):
        answer = client.post("/auth/token", data={"grant_type": "password"}, headers=FORM)
        assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"

    def test_a_json_body_is_refused(self, client):
        answer = client.post("/auth/token", json={"grant_type": "client_credentials"})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"

    def test_a_repeated_parameter_is_refused(self, services, client):
        system = register_system(services)
        form = system.token_form(token_url(client), "admin")
        body = "&".join(f"{k}={v}" for k, v in form.items()) + "&scope=system/*.cruds"
        answer = client.post("/auth/token", content=body, headers=FORM)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"

    def test_no_assertion_is_invalid_client(self, client):
        answer = client.post("/auth/token", data={"grant_type": "client_credentials", "scope": "admin"}, headers=FORM)
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


class TestClientKeyRotation:
    def test_a_client_signs_with_either_of_its_registered_keys(self, services, client):
        system = register_system(services)
        old = system.key
        new = system.add_key("ES384", "vicpol-lead-2")
        services.identity.clients.add(system.client_id, "vicpol", "system/*.cruds admin", jwks=system.jwks)
        url = token_url(client)
        for key, alg in ((old, "RS384"), (new, "ES384")):
            assertion = system.assertion(url, header={"alg": alg}, key=key)
            answer = client.post("/auth/token", data=system.token_form(url, "admin", assertion), headers=FORM)
            assert answer.status_code == 200, (alg, answer.text)


class TestSigningKeyRotation:
    def test_old_tokens_stay_valid_and_new_ones_use_the_new_key(self, services, client):
        system = register_system(services)
        before = get_token(client, system, "admin")
        result = services.identity.signing.rotate()
        after = get_token(client, system, "admin")
        assert claims_of(after)[0]["kid"] == result.new_kid != claims_of(before)[0]["kid"]
        published = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
        assert published == {claims_of(before)[0]["kid"], result.new_kid}
        for token in (before, after):
            assert client.get("/admin/clients", headers=bearer(token)).status_code == 200

    def test_the_private_key_is_stored_encrypted(self, services):
        from sqlalchemy import select

        from gateway.store.schema import signing_keys

        key = services.identity.signing.signer()
        private_d = key.as_dict(private=True)["d"]
        row = services.db.run_read(lambda conn: conn.execute(select(signing_keys)).one())
        assert private_d.encode() not in row.private_jwk and "d" not in json.loads(row.public_jwk)
