"""Public key sets (JWKS) of agency systems and external identity providers.

A registered JWKS holds public keys only, each with a `kid`: a client rotates its keys by
publishing the new one beside the old and naming it in its assertions' `kid`. A JWKS served
at a URL is fetched, kept for a while, and fetched again when a `kid` is not in it (at most
once per `min_refetch_seconds`, so that made-up kids cannot make the gateway hammer the URL).
"""

import ipaddress
import json
import threading
import time
import urllib.request
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

FETCH_TIMEOUT_SECONDS = 5
MAX_JWKS_BYTES = 256 * 1024
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


class JwksError(ValueError):
    """A key set that cannot be used: not JSON, no keys, private material, no kid, unreachable."""


def parse_public_jwks(document: dict | str | bytes) -> KeySet:
    """A JWKS of public keys, each named by `kid`; private or symmetric keys are refused."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError:
            raise JwksError("the JWKS is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise JwksError('the JWKS must be an object with a non-empty "keys" list')
    for key in keys:
        if PRIVATE_MEMBERS & key.keys():
            raise JwksError(f"key {key.get('kid', '(no kid)')} holds private or symmetric key material; register public keys only")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise JwksError("every key needs a kid (assertions name the key that signed them)")
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise JwksError("two keys share a kid")
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise JwksError(f"a key cannot be read: {exc}") from None


def check_jwks_url(url: str) -> str:
    """Keys travel over TLS; plain http only to this machine (development, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise JwksError(f"the JWKS URL must be https (or http on loopback): {url}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class JwksCache:
    """JWKS documents fetched from URLs, shared by every request of this process."""

    def __init__(self, ttl_seconds: float = 300.0, min_refetch_seconds: float = 5.0):
        self.ttl_seconds = ttl_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self._sets: dict[str, tuple[KeySet, float]] = {}  # url -> (keys, fetched at, monotonic)
        self._lock = threading.Lock()

    def keys(self, url: str, kid: str | None = None) -> KeySet:
        """The key set at `url`, fetched again if stale or if it lacks `kid` (and may be refetched)."""
        cached = self._sets.get(url)
        now = time.monotonic()
        if cached is not None:
            keys, fetched = cached
            fresh = now - fetched < self.ttl_seconds
            known = kid is None or any(k.kid == kid for k in keys.keys)
            if fresh and (known or now - fetched < self.min_refetch_seconds):
                return keys
        with self._lock:
            keys = parse_public_jwks(_fetch(check_jwks_url(url)))
            self._sets[url] = (keys, time.monotonic())
        return keys


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
            body = response.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise JwksError(f"the JWKS at {url} cannot be fetched: {exc}") from None
    if len(body) > MAX_JWKS_BYTES:
        raise JwksError(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
    return body
