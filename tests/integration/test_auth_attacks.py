"""Attacks on the token endpoint and on access tokens: each is refused, recorded, and never logged.

Every refusal that reaches the gateway leaves a security event (reason code, claimed client,
source) and one log line; neither ever contains the assertion or the token.
"""

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.support.agency_systems import FORM, AgencySystem, bearer, get_token, register_system, token_url


@pytest.fixture
def client(anonymous_client):
    """These tests send their own tokens, or none."""
    return anonymous_client


def leaked(secret: str, text: str) -> bool:
    """The whole JWT, or any of its three parts (a signature alone can be replayed with its header and claims)."""
    return secret in text or any(len(part) > 16 and part in text for part in secret.split("."))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, claims: dict, sign=lambda signing_input: b"") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hs256(secret: bytes):
    return lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest()


def assertion_claims(system: AgencySystem, url: str, **changes) -> dict:
    now = int(time.time())
    return {"iss": system.client_id, "sub": system.client_id, "aud": url, "exp": now + 240, "jti": f"j{time.time_ns()}", **changes}


@pytest.fixture
def settings(settings):
    """Processes see revocations and deleted keys within 0.2 s here, so the tests need not wait 5 s."""
    return settings.model_copy(update={"identity_cache_seconds": 0.2})


@pytest.fixture
def system(services):
    return register_system(services, scopes="system/Task.rs admin")


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)  # authlib logs at DEBUG; nothing secret may appear even there
    return caplog


def refusal(services, client, form: dict, logs, status: int = 401, error: str = "invalid_client") -> dict:
    answer = client.post("/auth/token", data=form, headers=FORM)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["error_description"]
    assert "access_token" not in answer.json()
    event = services.identity.security_events.recent(1)[0]
    assert event.kind == "token-refused"
    secret = form.get("client_assertion") or ""
    assert not leaked(secret, logs.text + event.detail)
    return {"reason": event.reason, "client": event.client_id, "detail": event.detail}


class TestAssertionAttacks:
    def test_bad_signature(self, services, client, system, logs):
        url = token_url(client)
        impostor = RSAKey.generate_key(2048, parameters={"kid": system.key.kid}, private=True)  # same kid, other key
        form = system.token_form(url, "admin", system.assertion(url, key=impostor))
        assert refusal(services, client, form, logs) == {
            "reason": "bad-signature", "client": system.client_id, "detail": "invalid_client: The assertion's signature does not verify",
        }

    def test_alg_none(self, services, client, system, logs):
        url = token_url(client)
        form = system.token_form(url, "admin", forged({"alg": "none", "kid": system.key.kid}, assertion_claims(system, url)))
        assert refusal(services, client, form, logs)["reason"] == "algorithm-not-allowed"

    def test_hs256_keyed_with_the_clients_public_key(self, services, client, system, logs):
        url = token_url(client)
        public_pem = system.key.as_pem(private=False)
        token = forged({"alg": "HS256", "kid": system.key.kid}, assertion_claims(system, url), hs256(public_pem))
        assert refusal(services, client, system.token_form(url, "admin", token), logs)["reason"] == "algorithm-not-allowed"

    def test_expired_assertion(self, services, client, system, logs):
        url = token_url(client)
        form = system.token_form(url, "admin", system.assertion(url, exp=int(time.time()) - 120))
        assert refusal(services, client, form, logs)["reason"] == "expired-assertion"

    def test_expiry_more_than_five_minutes_ahead(self, services, client, system, logs):
        url = token_url(client)
        form = system.token_form(url, "admin", system.assertion(url, exp=int(time.time()) + 3600))
        assert refusal(services, client, form, logs)["reason"] == "exp-too-far"

    @pytest.mark.parametrize("audience", ["http://gateway.test/fhir", "https://other-gateway.example.org/auth/token"])
    def test_wrong_audience(self, services, client, system, logs, audience):
        form = system.token_form(token_url(client), "admin", system.assertion(token_url(client), aud=audience))
        assert refusal(services, client, form, logs)["reason"] == "wrong-audience"

    def test_issuer_other_than_the_subject(self, services, client, system, logs):
        url = token_url(client)
        form = system.token_form(url, "admin", system.assertion(url, iss="someone-else"))
        assert refusal(services, client, form, logs)["reason"] == "iss-not-sub"

    def test_missing_jti(self, services, client, system, logs):
        url = token_url(client)
        form = system.token_form(url, "admin", system.assertion(url, jti=None))
        assert refusal(services, client, form, logs)["reason"] == "invalid-claims"

    def test_replayed_jti(self, services, client, system, logs):
        url = token_url(client)
        assertion = system.assertion(url)
        first = client.post("/auth/token", data=system.token_form(url, "admin", assertion), headers=FORM)
        assert first.status_code == 200
        assert refusal(services, client, system.token_form(url, "admin", assertion), logs)["reason"] == "replayed-assertion"

    def test_same_jti_in_a_fresh_assertion_is_still_a_replay(self, services, client, system, logs):
        url = token_url(client)
        assert client.post("/auth/token", data=system.token_form(url, "admin", system.assertion(url, jti="once")), headers=FORM).status_code == 200
        form = system.token_form(url, "admin", system.assertion(url, jti="once", exp=int(time.time()) + 200))
        assert refusal(services, client, form, logs)["reason"] == "replayed-assertion"

    def test_unknown_client(self, services, client, logs):
        stranger = AgencySystem("stranger")
        form = stranger.token_form(token_url(client), "admin")
        assert refusal(services, client, form, logs) == {
            "reason": "unknown-client", "client": "stranger", "detail": "invalid_client: The client is not registered or was revoked",
        }

    def test_revoked_client(self, services, client, system, logs):
        services.identity.clients.revoke(system.client_id)
        form = system.token_form(token_url(client), "admin")
        found = refusal(services, client, form, logs)
        assert found["reason"] == "revoked-client"
        assert found["detail"] == "invalid_client: The client is not registered or was revoked"  # same words as unknown

    def test_key_of_another_client(self, services, client, system, logs):
        other = register_system(services, client_id="vicpol-other")
        url = token_url(client)
        # signed by the other client's key, claiming to be `system`
        token = jwt.encode({"alg": "RS384", "kid": other.key.kid}, assertion_claims(system, url), other.key, algorithms=["RS384"])
        assert refusal(services, client, system.token_form(url, "admin", token), logs)["reason"] == "unknown-key"

    def test_scope_escalation_gets_only_the_registered_part(self, services, client, system):
        answer = client.post("/auth/token", data=system.token_form(token_url(client), "system/*.cruds admin audit"), headers=FORM)
        assert answer.status_code == 200 and answer.json()["scope"] == "system/Task.rs admin"

    def test_scope_escalation_to_nothing_registered_is_invalid_scope(self, services, client, system, logs):
        form = system.token_form(token_url(client), "audit system/Consent.cruds")
        assert refusal(services, client, form, logs, status=400, error="invalid_scope")["reason"] == "invalid_scope"

    def test_garbage_assertion(self, services, client, system, logs):
        form = system.token_form(token_url(client), "admin", "not.a.jwt")
        found = refusal(services, client, form, logs)
        assert found["reason"] == "invalid_client" and found["client"] is None


def access_refusal(services, client, token: str, logs) -> str:
    answer = client.get("/admin/clients", headers=bearer(token))
    assert answer.status_code == 401, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.headers["www-authenticate"].startswith('Bearer realm="gateway", error="invalid_token"')
    event = services.identity.security_events.recent(1)[0]
    assert event.kind == "access-refused" and event.detail.startswith("GET /admin/clients: ")
    assert not leaked(token, logs.text + event.detail)
    return event.reason


class TestAccessTokenAttacks:
    def test_tampered_token(self, services, client, system, logs):
        token = get_token(client, system, "system/Task.rs")
        header, claims, signature = token.split(".")
        widened = json.loads(base64.urlsafe_b64decode(claims + "=="))
        widened["scope"] = "system/*.cruds admin"
        assert access_refusal(services, client, f"{header}.{b64(json.dumps(widened).encode())}.{signature}", logs) == "bad-signature"

    def test_alg_none_access_token(self, services, client, system, logs):
        kid = services.identity.signing.signer().kid
        claims = {"iss": "http://gateway.test", "aud": "http://gateway.test", "exp": int(time.time()) + 60, "jti": "x",
                  "agency": "vicpol", "client_id": system.client_id, "scope": "admin"}
        assert access_refusal(services, client, forged({"alg": "none", "typ": "at+jwt", "kid": kid}, claims), logs) == "algorithm-not-allowed"

    def test_hs256_keyed_with_the_gateways_public_key(self, services, client, system, logs):
        key = services.identity.signing.signer()
        claims = {"iss": "http://gateway.test", "aud": "http://gateway.test", "exp": int(time.time()) + 60, "jti": "x",
                  "agency": "vicpol", "client_id": system.client_id, "scope": "admin"}
        token = forged({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, claims, hs256(key.as_pem(private=False)))
        assert access_refusal(services, client, token, logs) == "algorithm-not-allowed"

    def test_a_client_assertion_is_not_an_access_token(self, services, client, system, logs):
        assert access_refusal(services, client, system.assertion("http://gateway.test"), logs) == "untrusted-issuer"

    def test_token_signed_by_a_deleted_key(self, services, client, system, logs):
        token = get_token(client, system, "admin")  # never used, so in no cache
        result = services.identity.signing.rotate(revoke_previous=True)
        assert result.deleted and get_token(client, system, "admin")
        assert access_refusal(services, client, token, logs) == "unknown-key"

    def test_a_deleted_key_also_ends_tokens_already_verified(self, services, client, system, logs):
        token = get_token(client, system, "admin")
        assert client.get("/admin/clients", headers=bearer(token)).status_code == 200  # now cached
        services.identity.signing.rotate(revoke_previous=True)
        time.sleep(services.settings.identity_cache_seconds)
        assert access_refusal(services, client, token, logs) == "unknown-key"

    def test_token_of_a_revoked_client(self, services, client, system, logs):
        token = get_token(client, system, "admin")
        assert client.get("/admin/clients", headers=bearer(token)).status_code == 200
        services.identity.clients.revoke(system.client_id)
        time.sleep(services.settings.identity_cache_seconds)
        assert access_refusal(services, client, token, logs) == "revoked-client"

    def test_expired_token(self, services, client, system, logs):
        key = services.identity.signing.signer()
        now = int(time.time())
        claims = {"iss": "http://gateway.test", "aud": "http://gateway.test", "iat": now - 900, "exp": now - 600, "jti": "x",
                  "agency": "vicpol", "client_id": system.client_id, "scope": "admin"}
        token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, key)
        assert access_refusal(services, client, token, logs) == "expired-token"

    def test_token_from_an_untrusted_issuer(self, services, client, system, logs):
        outsider = ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True)
        claims = {"iss": "https://idp.example.org/realms/fv", "aud": "http://gateway.test", "exp": int(time.time()) + 60,
                  "azp": system.client_id, "agency": "vicpol", "scope": "admin"}
        token = jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, outsider)
        assert access_refusal(services, client, token, logs) == "untrusted-issuer"

    def test_token_for_another_gateway(self, services, client, system, logs):
        token = get_token(client, system, "admin")
        answer = client.get("/admin/clients", headers={**bearer(token), "host": "other-gateway.test"})
        assert answer.status_code == 401
