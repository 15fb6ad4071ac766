"""The identity services, built once by the composition root (gateway.bootstrap)."""

import logging
import time
from dataclasses import dataclass

from gateway.auth.access import AccessTokenVerifier
from gateway.auth.agencies import AgencyRegistry
from gateway.auth.clients import ClientRegistry
from gateway.auth.issuers import ExternalIssuers
from gateway.auth.jwks import JwksCache
from gateway.auth.replay import UsedAssertions
from gateway.auth.security_events import SecurityEvents
from gateway.auth.signing import SigningKeys
from gateway.auth.token_endpoint import TokenEndpoint
from gateway.settings import Settings
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring
from gateway.store.resources import ResourceStore

JWKS_TTL_SECONDS = 300.0  # how long a fetched JWKS is used before it is fetched again anyway


@dataclass
class Identity:
    agencies: AgencyRegistry
    clients: ClientRegistry
    signing: SigningKeys
    tokens: TokenEndpoint
    access: AccessTokenVerifier
    security_events: SecurityEvents
    issuers: ExternalIssuers


def build_identity(settings: Settings, db: Database, store: ResourceStore, keyring: DataKeyring) -> Identity:
    # authlib logs requests, assertions and tokens at DEBUG; credentials never reach the log
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").getEffectiveLevel()))
    agencies = AgencyRegistry(db, store)
    clients = ClientRegistry(db, agencies)
    signing = SigningKeys(db, keyring, settings.token_lifetime_seconds, settings.identity_cache_seconds)
    events = SecurityEvents(db)
    jwks = JwksCache(JWKS_TTL_SECONDS, settings.identity_cache_seconds)
    issuers = ExternalIssuers(settings.trusted_issuers, jwks, _cached_lookup(agencies, settings.identity_cache_seconds))
    tokens = TokenEndpoint(clients, signing, UsedAssertions(db), events, jwks, settings.token_lifetime_seconds)
    access = AccessTokenVerifier(signing, clients.revoked_ids, issuers, settings.identity_cache_seconds)
    return Identity(agencies, clients, signing, tokens, access, events, issuers)


def _cached_lookup(agencies: AgencyRegistry, cache_seconds: float):
    """Whether an agency is registered, remembered for a while (external tokens name agencies)."""
    known: dict[str, tuple[bool, float]] = {}

    def exists(agency_id: str) -> bool:
        hit = known.get(agency_id)
        if hit is None or time.monotonic() - hit[1] >= cache_seconds:
            if len(known) > 10_000:
                known.clear()
            hit = (agencies.find(agency_id) is not None, time.monotonic())
            known[agency_id] = hit
        return hit[0]

    return exists
