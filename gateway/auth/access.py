"""Access-token verification: a bearer token in, the Caller out (or AccessDenied).

Tokens the gateway issued are checked against its published signing keys; tokens of a trusted
external provider against that provider's keys (gateway.auth.issuers). Verifying a signature
costs tens of microseconds, so each process keeps the Callers of tokens it has verified until
they expire; the cache is only a cache (DESIGN section 10): a hit is still refused once the
token expires, its client is revoked, or its signing key is deleted, as soon as this process
sees the change (within `cache_seconds`).
"""

import json
import threading
import time
from typing import Callable

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidKeyIdError, JoseError, UnsupportedAlgorithmError

from gateway.auth.caller import AccessDenied, Caller
from gateway.auth.issuers import ExternalIssuers
from gateway.auth.scopes import ScopeError, ScopeSet
from gateway.auth.signing import ALGORITHM, SigningKeys
from gateway.auth.token_endpoint import ACCESS_TOKEN_TYPE

MAX_TOKEN_CHARS = 8192
MAX_CACHED = 10_000
LEEWAY_SECONDS = 30


class AccessTokenVerifier:
    def __init__(
        self, signing: SigningKeys, revoked_clients: Callable[[], frozenset[str]], issuers: ExternalIssuers,
        cache_seconds: float, clock: Callable[[], float] = time.time,
    ):
        self.signing = signing
        self.issuers = issuers
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._revoked_clients = revoked_clients
        self._revoked: tuple[frozenset[str], float] | None = None  # (client ids, loaded at, monotonic)
        self._cache: dict[str, tuple[Caller, str, str | None]] = {}  # token -> (caller, root, own kid)
        self._lock = threading.Lock()

    def cached(self, token: str, root: str) -> Caller | None:
        """The Caller of a token this process verified before and that still holds, else None."""
        entry = self._cache.get(token)
        if entry is None:
            return None
        caller, verified_root, kid = entry
        if (
            verified_root != root
            or caller.expires_at <= self.clock()
            or caller.client_id in self.revoked()
            or (kid is not None and not self.signing.is_published(kid))
        ):
            self._cache.pop(token, None)
            return None
        return caller

    def verify(self, token: str, root: str) -> Caller:
        """Check the token (may read the database or fetch a provider's keys: call off the event loop)."""
        caller = self.cached(token, root)
        if caller is not None:
            return caller
        if len(token) > MAX_TOKEN_CHARS:
            raise AccessDenied("malformed-token", "the access token is too long")
        header, claims = _unverified(token)
        issuer, kid = claims.get("iss"), header.get("kid") if isinstance(header.get("kid"), str) else None
        if issuer == root:
            caller = self._own(token, header, kid, root)
        elif self.issuers.trusts(issuer):
            caller, kid = self.issuers.verify(token, issuer, kid, int(self.clock())), None
        else:
            raise AccessDenied("untrusted-issuer", "the access token's issuer is not trusted by this gateway")
        if caller.client_id in self.revoked():
            raise AccessDenied("revoked-client", "the client this token was issued to has been revoked")
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()  # crude, but bounded; a miss only costs one verification
            self._cache[token] = (caller, root, kid)
        return caller

    def revoked(self) -> frozenset[str]:
        cached = self._revoked
        if cached is None or time.monotonic() - cached[1] >= self.cache_seconds:
            cached = (self._revoked_clients(), time.monotonic())
            self._revoked = cached
        return cached[0]

    def _own(self, token: str, header: dict, kid: str | None, root: str) -> Caller:
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise AccessDenied("not-an-access-token", f"the token's typ must be {ACCESS_TOKEN_TYPE}")
        if kid is None:
            raise AccessDenied("unknown-key", "the access token names no signing key (kid)")
        try:
            claims = jwt.decode(token, self.signing.published(kid), algorithms=[ALGORITHM]).claims
        except UnsupportedAlgorithmError:
            raise AccessDenied("algorithm-not-allowed", f"the gateway's tokens are signed with {ALGORITHM} only") from None
        except InvalidKeyIdError:
            raise AccessDenied("unknown-key", "the access token's signing key is not (or no longer) published") from None
        except BadSignatureError:
            raise AccessDenied("bad-signature", "the access token's signature does not verify") from None
        except (JoseError, ValueError):
            raise AccessDenied("malformed-token", "the access token cannot be read") from None
        _check_claims(claims, root, int(self.clock()))
        try:
            scopes = ScopeSet.parse(claims["scope"])
        except ScopeError:
            raise AccessDenied("invalid-claims", "the access token's scopes cannot be read") from None
        return Caller(claims["agency"], claims["client_id"], scopes, claims["jti"], int(claims["exp"]), root)


def _unverified(token: str) -> tuple[dict, dict]:
    """Header and claims before any check: only to choose the issuer and key to check with."""
    try:
        obj = jws.extract_compact(token.encode())
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, UnicodeError):
        raise AccessDenied("malformed-token", "the access token is not a JWT") from None
    if not isinstance(claims, dict):
        raise AccessDenied("malformed-token", "the access token is not a JWT")
    return obj.headers(), claims


def _check_claims(claims: dict, root: str, now: int) -> None:
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=LEEWAY_SECONDS, iss={"essential": True, "value": root}, aud={"essential": True, "value": root},
        exp={"essential": True}, jti={"essential": True}, agency={"essential": True}, client_id={"essential": True},
        scope={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise AccessDenied("expired-token", "the access token has expired") from None
    except JoseError as exc:
        raise AccessDenied("invalid-claims", f"the access token's claims are not valid: {exc.description}") from None
    if not all(isinstance(claims[c], str) for c in ("agency", "client_id", "scope", "jti")):
        raise AccessDenied("invalid-claims", "the access token's claims are not valid")
