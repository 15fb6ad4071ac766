"""`POST /auth/token`: SMART Backend Services' client-credentials grant, on authlib's server.

authlib runs the OAuth 2.0 part (grant selection, client authentication, error responses); the
gateway supplies the client registry, the strict assertion check (gateway.auth.assertion), the
scopes it grants and the access token itself: a JWT (RFC 9068, `typ: at+jwt`) signed with the
gateway's current key, named by `kid`, carrying the granted scopes and the agency.

Scopes: the token carries only what was asked for AND registered for the client. A requested
scope wider than the registration is narrowed to the part registered (`system/*.rs` asked,
`system/Task.cruds` registered: `system/Task.rs` granted), and the response's `scope` says what
was granted. Only a request of which nothing at all can be granted is refused (invalid_scope).
"""

import json
import secrets
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

from authlib.oauth2.rfc6749 import AuthorizationServer, InvalidRequestError, InvalidScopeError, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.auth.assertion import Refused, SmartClientAssertion
from gateway.auth.clients import AUTH_METHOD, ClientRegistry, RegisteredClient
from gateway.auth.jwks import JwksCache, parse_public_jwks
from gateway.auth.replay import UsedAssertions
from gateway.auth.scopes import ScopeError, ScopeSet
from gateway.auth.security_events import TOKEN_REFUSED, SecurityEvent, SecurityEvents, claimed_id
from gateway.auth.signing import ALGORITHM, SigningKeys

TOKEN_PATH = "/auth/token"
ACCESS_TOKEN_TYPE = "at+jwt"

# The request being answered, for the parts authlib calls without it (the assertion's audience,
# the token's issuer); `TokenEndpoint.issue` sets it around one request, in one thread.
_request: ContextVar["TokenRequest"] = ContextVar("token_request")


@dataclass(frozen=True)
class TokenResponse:
    status: int
    body: dict
    headers: list[tuple[str, str]]


class TokenRequest(OAuth2Request):
    """A token request as authlib sees it.

    TLS ends at the load balancer in front of the gateway (docs/deployment.md), so the gateway
    itself sees plain HTTP; authlib's check that the request URL is https is left out here.
    """

    def __init__(self, form: dict[str, str], root: str, source: str | None):
        self.method, self.uri, self.headers = "POST", root + TOKEN_PATH, {}
        self._body = None
        self.payload = BasicOAuth2Payload(form)
        self.client = self.auth_method = self.user = self.credential = None
        self.authorization_code = self.refresh_token = None
        self._scope = None
        self.root, self.source = root, source

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data

    @property
    def args(self) -> dict[str, str]:
        return {}


class SystemTokenGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]

    def validate_requested_scope(self):
        requested = self.request.payload.scope
        if not requested or not requested.strip():
            raise InvalidScopeError("Ask for the scopes you need (SMART Backend Services requires scope)")
        try:
            granted = ScopeSet.parse(requested).granted_from(self.client.scopes)
        except ScopeError as exc:
            raise InvalidScopeError(str(exc).replace('"', "'")) from None
        if not granted:
            raise InvalidScopeError("None of the requested scopes is registered for this client")
        self.request.scope = granted.text

    def create_token_response(self):
        # authlib's version logs the token at DEBUG; a token is a credential and is never logged
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class AccessTokens(BearerTokenGenerator):
    """Access tokens as signed JWTs; authlib shapes the response around them."""

    def __init__(self, signing: SigningKeys, lifetime_seconds: int, clock: Callable[[], float] = time.time):
        super().__init__(self._access_token, expires_generator=lifetime_seconds)
        self.signing = signing
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock

    def _access_token(self, client: RegisteredClient, grant_type: str, user, scope: str) -> str:
        root = _request.get().root
        now = int(self.clock())
        claims = {
            "iss": root, "aud": root, "sub": client.client_id, "client_id": client.client_id, "agency": client.agency_id,
            "scope": scope, "iat": now, "exp": now + self.lifetime_seconds, "jti": secrets.token_urlsafe(16),
        }
        key = self.signing.signer()
        return jwt.encode({"alg": ALGORITHM, "typ": ACCESS_TOKEN_TYPE, "kid": key.kid}, claims, key, algorithms=[ALGORITHM])


class _Server(AuthorizationServer):
    def __init__(self, clients: ClientRegistry, events: SecurityEvents):
        super().__init__()
        self.clients = clients
        self.events = events

    def query_client(self, client_id: str) -> RegisteredClient:
        client = self.clients.find(client_id)
        if client is None:
            raise Refused("unknown-client", "The client is not registered or was revoked")
        return client

    def create_oauth2_request(self, request: TokenRequest) -> TokenRequest:
        return request  # TokenEndpoint.issue builds it

    def save_token(self, token, request):
        pass  # self-contained JWTs: nothing to store

    def send_signal(self, name, *args, **kwargs):
        pass

    def handle_response(self, status, body, headers):
        return TokenResponse(status, body, list(headers))

    def handle_error_response(self, request: TokenRequest, error):
        if error.error == "invalid_client":
            error.status_code = 401  # RFC 6749 5.2 allows it; SMART clients expect it
        self.events.record(
            SecurityEvent(
                kind=TOKEN_REFUSED,
                reason=getattr(error, "reason", error.error),
                detail=f"{error.error}: {error.get_error_description() or ''}".strip(),
                client_id=request.client.client_id if request.client else claimed_id(_claimed_sub(request)),
                agency_id=request.client.agency_id if request.client else None,
                source=request.source,
            )
        )
        return super().handle_error_response(request, error)


def _claimed_sub(request: TokenRequest) -> object:
    """The client id an unverified assertion claims, for the record of its refusal."""
    try:
        claims = json.loads(jws.extract_compact((request.form.get("client_assertion") or "").encode()).payload)
    except (JoseError, ValueError):
        return None
    return claims.get("sub") if isinstance(claims, dict) else None


class TokenEndpoint:
    def __init__(
        self, clients: ClientRegistry, signing: SigningKeys, used: UsedAssertions, events: SecurityEvents,
        jwks_cache: JwksCache, lifetime_seconds: int, clock: Callable[[], float] = time.time,
    ):
        self.jwks_cache = jwks_cache
        self.lifetime_seconds = lifetime_seconds
        self._registered_keys: dict[tuple[str, int], KeySet] = {}
        self._lock = threading.Lock()
        self.server = _Server(clients, events)
        self.server.register_client_auth_method(AUTH_METHOD, SmartClientAssertion(lambda: _request.get().uri, self._client_keys, used.first_use, clock))
        self.server.register_grant(SystemTokenGrant)
        self.server.register_token_generator("default", AccessTokens(signing, lifetime_seconds, clock))

    def issue(self, form: dict[str, str], root: str, source: str | None = None) -> TokenResponse:
        """Answer one token request (blocking: it reads and writes the database)."""
        request = TokenRequest(form, root, source)
        current = _request.set(request)
        try:
            return self.server.create_token_response(request)
        finally:
            _request.reset(current)

    def refuse(self, description: str, root: str, source: str | None = None) -> TokenResponse:
        """A request too malformed for authlib to read (repeated parameters, wrong media type)."""
        request = TokenRequest({}, root, source)
        return self.server.handle_error_response(request, InvalidRequestError(description))

    def _client_keys(self, client: RegisteredClient, kid: str | None) -> KeySet:
        if client.jwks_url:
            return self.jwks_cache.keys(client.jwks_url, kid)
        version = (client.client_id, client.updated_at)  # parsed once per registration, not per request
        keys = self._registered_keys.get(version)
        if keys is None:
            keys = parse_public_jwks(client.jwks)
            with self._lock:
                if len(self._registered_keys) > 10_000:
                    self._registered_keys.clear()
                self._registered_keys[version] = keys
        return keys
