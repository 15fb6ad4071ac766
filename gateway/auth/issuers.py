"""External identity providers (Keycloak, Entra ID) trusted by issuer URL and JWKS.

An agency that already runs an identity provider can have its systems use that provider's
client-credentials tokens instead of the gateway's. The gateway trusts only issuers listed in
GATEWAY_TRUSTED_ISSUERS, checks each token's signature against the issuer's published keys,
its audience (this gateway, as registered at the provider) and expiry, and maps a claim to a
registered agency:

    Keycloak: a hardcoded-claim mapper puts `"agency": "vicpol"` in the client's tokens, and
              the scopes are in `scope`.
    Entra ID: no free-form claims for app tokens; map the calling app (`azp`) to an agency with
              `agencies: {"<app id>": "vicpol"}` and read the app roles with `scope_claim: roles`.
"""

from typing import Callable

from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidKeyIdError, JoseError, UnsupportedAlgorithmError

from gateway.auth.caller import AccessDenied, Caller
from gateway.auth.jwks import JwksCache, JwksError
from gateway.auth.scopes import ScopeError, ScopeSet
from gateway.settings import TrustedIssuer

LEEWAY_SECONDS = 30


class ExternalIssuers:
    def __init__(self, trusted: list[TrustedIssuer], jwks: JwksCache, agency_exists: Callable[[str], bool]):
        self._trusted = {t.issuer: t for t in trusted}
        self._jwks = jwks
        self._agency_exists = agency_exists

    def trusts(self, issuer: object) -> bool:
        return isinstance(issuer, str) and issuer in self._trusted

    def verify(self, token: str, issuer: str, kid: str | None, now: int) -> Caller:
        config = self._trusted[issuer]
        try:
            keys = self._jwks.keys(config.jwks_url, kid)
        except JwksError as exc:
            raise AccessDenied("issuer-keys-unavailable", f"the keys of issuer {issuer} cannot be fetched") from exc
        claims = _verified_claims(token, keys, config, now)
        scopes = _scopes(claims.get(config.scope_claim))
        return Caller(
            agency_id=self._agency(config, claims), client_id=_text(claims.get(config.client_claim)) or _text(claims.get("sub")) or "?",
            scopes=scopes, token_id=_text(claims.get("jti")) or "", expires_at=int(claims["exp"]), issuer=issuer,
        )

    def _agency(self, config: TrustedIssuer, claims: dict) -> str:
        value = _text(claims.get(config.agency_claim))
        if value is None:
            raise AccessDenied("no-agency", f"the token has no '{config.agency_claim}' claim naming the agency")
        agency_id = config.agencies.get(value, value if not config.agencies else None)
        if agency_id is None or not self._agency_exists(agency_id):
            raise AccessDenied("unknown-agency", f"the token's agency '{value}' is not a registered agency")
        return agency_id


def _verified_claims(token: str, keys, config: TrustedIssuer, now: int) -> dict:
    try:
        claims = jwt.decode(token, keys, algorithms=config.algorithms).claims
    except UnsupportedAlgorithmError:
        raise AccessDenied("algorithm-not-allowed", "the token's signature algorithm is not accepted") from None
    except InvalidKeyIdError:
        raise AccessDenied("unknown-key", "the token is signed by a key its issuer does not publish") from None
    except BadSignatureError:
        raise AccessDenied("bad-signature", "the token's signature does not verify") from None
    except (JoseError, ValueError):
        raise AccessDenied("malformed-token", "the token cannot be read") from None
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=LEEWAY_SECONDS, iss={"essential": True, "value": config.issuer},
        aud={"essential": True, "value": config.audience}, exp={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise AccessDenied("expired-token", "the token has expired") from None
    except JoseError as exc:
        raise AccessDenied("invalid-claims", f"the token's claims are not valid: {exc.description}") from None
    return claims


def _scopes(value: object) -> ScopeSet:
    """Scopes as a space-separated string (OAuth) or a list (Entra ID roles); unknown ones are dropped."""
    texts = value.split() if isinstance(value, str) else [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    known = []
    for text in texts:
        try:
            ScopeSet.parse(text)
        except ScopeError:
            continue  # providers add their own (profile, email, offline_access): not the gateway's
        known.append(text)
    return ScopeSet.parse(" ".join(known))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
