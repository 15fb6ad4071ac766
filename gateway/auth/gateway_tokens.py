"""The gateway's own access tokens: how the gateway proves who it is to Kafka (SASL OAUTHBEARER).

The broker checks every token it is shown against the gateway's published keys
(`/.well-known/jwks.json`), its issuer, audience and expiry, and names the connection after the
token's `agency` claim (`sasl.oauthbearer.sub.claim.name=agency`): an agency's systems act on
Kafka as `User:<agency id>`, held to that agency's topic ACLs. The gateway signs its own tokens
with its current signing key, as `User:fv_gateway`. That name has an underscore, which no FHIR
id (so no agency id) can have, so no agency can ever be named like the gateway on the broker.

Its tokens are for Kafka only: their audience is `<GATEWAY_BASE_URL>/kafka`, which the gateway's
own API refuses (it wants its base URL), so a token taken from a broker connection opens nothing
over HTTP. The broker accepts both audiences (docs/messaging.md shows its settings).

A token is minted once and reused until less than half its lifetime is left, or the gateway
signs with a new key (`gateway keys rotate-signing`); the Kafka client asks for one at each
connection and at each re-authentication the broker requires before a session expires.
"""

import secrets
import threading
import time
from typing import Callable

from joserfc import jwt

from gateway.auth.signing import ALGORITHM, SigningKeys
from gateway.auth.token_endpoint import ACCESS_TOKEN_TYPE

PRINCIPAL = "fv_gateway"  # the gateway on the broker; '_' keeps it out of the agency ids' syntax
CLIENT_ID = "fv-gateway"
PRINCIPAL_CLAIM = "agency"  # the broker's sasl.oauthbearer.sub.claim.name
KAFKA_AUDIENCE_PATH = "/kafka"


def kafka_audience(issuer: str) -> str:
    """The audience of the gateway's own tokens: the Kafka cluster, never its HTTP API."""
    return issuer.rstrip("/") + KAFKA_AUDIENCE_PATH


class GatewayTokens:
    def __init__(self, signing: SigningKeys, issuer: str, lifetime_seconds: int, clock: Callable[[], float] = time.time):
        self.signing = signing
        self.issuer = issuer.rstrip("/")
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock
        self._current: tuple[str, str, float] | None = None  # (token, kid, expires at)
        self._lock = threading.Lock()

    def token(self) -> str:
        """A valid token, at least half its lifetime ahead of it (may read the signing key from the database)."""
        key = self.signing.signer()
        with self._lock:
            current = self._current
            if current is None or current[1] != key.kid or current[2] - self.clock() < self.lifetime_seconds / 2:
                current = self._current = self._mint(key)
            return current[0]

    def _mint(self, key) -> tuple[str, str, float]:
        now = int(self.clock())
        claims = {
            "iss": self.issuer, "aud": kafka_audience(self.issuer), "sub": CLIENT_ID, "client_id": CLIENT_ID,
            PRINCIPAL_CLAIM: PRINCIPAL, "iat": now, "exp": now + self.lifetime_seconds, "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode({"alg": ALGORITHM, "typ": ACCESS_TOKEN_TYPE, "kid": key.kid}, claims, key, algorithms=[ALGORITHM])
        return token, key.kid, float(claims["exp"])
