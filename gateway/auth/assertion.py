"""The client assertion of SMART Backend Services (RFC 7523 private_key_jwt), checked strictly.

authlib's JWTBearerClientAssertion reads the assertion and finds the client; this subclass adds
what SMART asks of the server: only the listed signature algorithms (never `none`, never an
HMAC keyed with a public key), `iss` = `sub` = the client id, `aud` = the token URL, an expiry
no more than five minutes ahead, and a `jti` not used before. Each refusal carries a short
reason code for the security-event record; the client sees one sentence.
"""

import time
from contextvars import ContextVar
from typing import Callable

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidKeyIdError, JoseError, UnsupportedAlgorithmError
from joserfc.jwk import KeySet

from gateway.auth.clients import AUTH_METHOD, RegisteredClient
from gateway.auth.jwks import JwksError

# RS384 and ES384 are the two SMART requires servers to accept; the 256-bit ones are common.
ASSERTION_ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
MAX_LIFETIME_SECONDS = 300  # SMART: exp no more than five minutes in the future
LEEWAY_SECONDS = 30  # clock skew between the agency's system and the gateway
MAX_JTI_CHARS = 255


class Refused(InvalidClientError):
    """invalid_client, with the reason code recorded in the security event."""

    def __init__(self, reason: str, description: str, status_code: int = 401):
        super().__init__(description=description, status_code=status_code)
        self.reason = reason

    def get_headers(self):  # 401 without a Basic challenge: the client did not use HTTP Basic
        return super(InvalidClientError, self).get_headers()


class SmartClientAssertion(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(
        self,
        token_url: Callable[[], str],
        client_keys: Callable[[RegisteredClient, str | None], KeySet],
        first_use: Callable[[str, str, float], bool],
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(validate_jti=True, leeway=LEEWAY_SECONDS)
        self._token_url = token_url
        self._client_keys = client_keys
        self._first_use = first_use
        self._clock = clock
        self._kid: ContextVar[str | None] = ContextVar("assertion_kid", default=None)

    def __call__(self, query_client, request):
        # the key is chosen by the assertion's kid, which authlib reads but does not pass on
        assertion = request.form.get("client_assertion")
        if request.form.get("client_assertion_type") == self.CLIENT_ASSERTION_TYPE and assertion:
            headers, _claims = self.extract_assertion(assertion)
            kid = headers.get("kid")
            self._kid.set(kid if isinstance(kid, str) else None)
        return super().__call__(query_client, request)

    def get_audiences(self) -> list[str]:
        return [self._token_url()]

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        if client.revoked:
            raise Refused("revoked-client", "The client is not registered or was revoked")
        try:
            return self._client_keys(client, self._kid.get())
        except JwksError as exc:
            raise Refused("client-keys-unavailable", f"The client's public keys cannot be read: {exc}") from None

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except UnsupportedAlgorithmError:
            raise Refused("algorithm-not-allowed", f"The assertion must be signed with one of {', '.join(ASSERTION_ALGORITHMS)}") from None
        except InvalidKeyIdError:
            raise Refused("unknown-key", "No registered key of this client has the assertion's kid") from None
        except BadSignatureError:
            raise Refused("bad-signature", "The assertion's signature does not verify") from None
        except (JoseError, ValueError) as exc:
            raise Refused("malformed-assertion", f"The assertion cannot be read: {type(exc).__name__}") from None
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: dict) -> None:
        now = self._clock()
        registry = jwt.JWTClaimsRegistry(
            now=int(now), leeway=LEEWAY_SECONDS, iss={"essential": True}, sub={"essential": True},
            exp={"essential": True}, jti={"essential": True}, aud={"essential": True, "values": self.get_audiences()},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Refused("expired-assertion", "The assertion has expired") from None
        except JoseError as exc:
            claim = getattr(exc, "claim", "") or ""
            if claim == "aud":
                raise Refused("wrong-audience", f"The assertion's aud must be the token URL {self.get_audiences()[0]}") from None
            raise Refused("invalid-claims", f"The assertion's claims are not valid: {exc.description}") from None
        if claims["iss"] != claims["sub"]:
            raise Refused("iss-not-sub", "The assertion's iss and sub must both be the client id")
        if claims["exp"] > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise Refused("exp-too-far", "The assertion's exp must be at most five minutes ahead")
        if len(claims["jti"]) > MAX_JTI_CHARS:
            raise Refused("invalid-claims", f"The assertion's jti is longer than {MAX_JTI_CHARS} characters")
        if not self._first_use(claims["sub"], claims["jti"], claims["exp"] + LEEWAY_SECONDS):
            raise Refused("replayed-assertion", "This assertion (its jti) was used before")
