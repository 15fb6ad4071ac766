"""Who is calling: what a verified access token says, as the API's routes see it."""

from dataclasses import dataclass

from gateway.auth.scopes import ScopeSet


@dataclass(frozen=True)
class Caller:
    agency_id: str
    client_id: str
    scopes: ScopeSet
    token_id: str
    expires_at: int  # seconds since the epoch
    issuer: str


class AccessDenied(Exception):
    """A request's access token is missing, unreadable, expired, revoked or not trusted."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message
