"""Tokens from an external identity provider, trusted by issuer and JWKS.

The provider is played by a small HTTP server on this machine that publishes a JWKS, as
Keycloak's `/protocol/openid-connect/certs` or Entra ID's `discovery/v2.0/keys` do; the tests
sign its tokens with its private keys.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.settings import TrustedIssuer
from tests.support.agency_systems import VICPOL, bearer


@pytest.fixture
def client(anonymous_client):
    """These tests send their own tokens, or none."""
    return anonymous_client

AUDIENCE = "fv-gateway"


class IdentityProvider:
    """A JWKS endpoint on 127.0.0.1 and the keys behind it."""

    def __init__(self):
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)]
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                provider.fetches += 1
                body = json.dumps(KeySet(provider.keys).as_dict(private=False)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.issuer = f"{self.url}/realms/fv"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def token(self, key=None, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": f"kc-{time.time_ns()}",
                "azp": "vicpol-cad", "agency": "vicpol", "scope": "profile email admin system/Task.rs", **claims}
        signer = key or self.keys[-1]
        return jwt.encode({"alg": "RS256", "kid": signer.kid, "typ": "JWT"}, {k: v for k, v in body.items() if v is not None}, signer)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp():
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def settings(settings, idp):
    keycloak = TrustedIssuer(issuer=idp.issuer, jwks_url=idp.jwks_url, audience=AUDIENCE)
    return settings.model_copy(update={"trusted_issuers": [keycloak], "identity_cache_seconds": 0.2})


@pytest.fixture
def registered(services):
    services.identity.agencies.add(VICPOL)


def refused(services, client, token: str) -> str:
    answer = client.get("/admin/clients", headers=bearer(token))
    assert answer.status_code == 401, answer.text
    return services.identity.security_events.recent(1)[0].reason


def test_a_trusted_providers_token_opens_what_its_scopes_allow(services, client, idp, registered):
    token = idp.token()
    assert client.get("/admin/clients", headers=bearer(token)).status_code == 200
    caller = services.identity.access.cached(token, "http://gateway.test")
    assert (caller.agency_id, caller.client_id, caller.issuer) == ("vicpol", "vicpol-cad", idp.issuer)
    assert caller.scopes.text == "admin system/Task.rs"  # the provider's own scopes (profile, email) are dropped
    assert caller.scopes.allows("Task", "search") and not caller.scopes.allows("Task", "create")


def test_the_keys_are_fetched_once_and_kept(services, client, idp, registered):
    for _ in range(3):
        assert client.get("/admin/clients", headers=bearer(idp.token())).status_code == 200
    assert idp.fetches == 1


def test_a_provider_key_rotation_is_picked_up(services, client, idp, registered):
    assert client.get("/admin/clients", headers=bearer(idp.token())).status_code == 200
    idp.keys.append(RSAKey.generate_key(2048, parameters={"kid": "idp-2"}, private=True))
    time.sleep(0.25)  # a new kid is fetched for at most once per GATEWAY_IDENTITY_CACHE_SECONDS
    assert client.get("/admin/clients", headers=bearer(idp.token())).status_code == 200
    assert idp.fetches == 2


def test_a_token_signed_by_a_key_the_provider_does_not_publish(services, client, idp, registered):
    rogue = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)
    assert refused(services, client, idp.token(key=rogue)) == "bad-signature"
    unknown = RSAKey.generate_key(2048, parameters={"kid": "idp-9"}, private=True)
    assert refused(services, client, idp.token(key=unknown)) == "unknown-key"


@pytest.mark.parametrize(
    "claims,reason",
    [
        ({"aud": "some-other-api"}, "invalid-claims"),
        ({"exp": int(time.time()) - 600}, "expired-token"),
        ({"agency": None}, "no-agency"),
        ({"agency": "not-registered"}, "unknown-agency"),
    ],
)
def test_a_trusted_providers_token_is_still_checked(services, client, idp, registered, claims, reason):
    assert refused(services, client, idp.token(**claims)) == reason


def test_a_second_provider_that_is_not_configured_is_not_trusted(services, client, idp, registered):
    other = IdentityProvider()
    try:
        assert refused(services, client, other.token()) == "untrusted-issuer"
        assert other.fetches == 0  # its keys are never even fetched
    finally:
        other.stop()


class TestEntraStyleMapping:
    @pytest.fixture
    def settings(self, settings, idp):
        entra = TrustedIssuer(
            issuer=idp.issuer, jwks_url=idp.jwks_url, audience=AUDIENCE, agency_claim="azp",
            agencies={"3f1e-app-id": "vicpol"}, scope_claim="roles",
        )
        return settings.model_copy(update={"trusted_issuers": [entra]})

    def test_the_calling_app_is_mapped_to_its_agency_and_roles_are_scopes(self, services, client, idp, registered):
        token = idp.token(azp="3f1e-app-id", agency=None, scope=None, roles=["admin", "system/Patient.r"])
        assert client.get("/admin/clients", headers=bearer(token)).status_code == 200
        caller = services.identity.access.cached(token, "http://gateway.test")
        assert caller.agency_id == "vicpol" and caller.scopes.text == "admin system/Patient.r"

    def test_an_app_without_a_mapping_has_no_agency(self, services, client, idp, registered):
        assert refused(services, client, idp.token(azp="unmapped-app")) == "unknown-agency"
