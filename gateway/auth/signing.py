"""The gateway's own token-signing keys: kept encrypted in the database, rotated, published.

Every gateway process signs with the newest key and verifies with any published one, so the
keys live in the database (DESIGN section 10), the private half encrypted under a data key.
Each process caches the parsed keys (parsing a key costs far more than a signature) and looks
again every `cache_seconds`, or at once when a token names a kid it has not seen.

Rotation (`gateway keys rotate-signing`) makes a new key the signing key and retires the old
one: tokens it signed stay valid until they expire, because it stays published. Retired keys
are deleted once no token they signed can still be valid; `revoke_previous` deletes them at
once, for a key that may have leaked (every token it signed stops working).
"""

import json
import secrets
import threading
import time
from dataclasses import dataclass

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Connection, delete, insert, select, update

from gateway.fhir.dates import now_micros
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring
from gateway.store.key_rotation import SealedColumn
from gateway.store.schema import signing_keys

ALGORITHM = "ES256"  # signs in ~45 µs and verifies in ~95 µs; RSA-2048 signing costs ~330 µs
CURVE = "P-256"
UNKNOWN_KID_RELOAD_SECONDS = 1.0  # a flood of made-up kids costs at most one read a second


def _aad(kid: str) -> bytes:
    return f"signing-key/{kid}".encode()


SEALED = SealedColumn("signing keys", signing_keys, "private_jwk", lambda row: _aad(row.kid))  # re-encrypted on data key rotation


@dataclass(frozen=True)
class SigningKeyInfo:
    kid: str
    algorithm: str
    created_at: int
    retired_at: int | None

    @property
    def active(self) -> bool:
        return self.retired_at is None


@dataclass(frozen=True)
class RotationResult:
    new_kid: str
    retired: list[str]
    deleted: list[str]


class SigningKeys:
    def __init__(self, db: Database, keyring: DataKeyring, token_lifetime_seconds: int, cache_seconds: float):
        self.db = db
        self.keyring = keyring
        self.token_lifetime_seconds = token_lifetime_seconds
        self.cache_seconds = cache_seconds
        # Each cache entry names how many rotations this process had made when its read began, and
        # is used only while that count holds: an entry read while a rotation committed is never
        # used again, even when it is stored after the rotation ended.
        self._rotations = 0
        self._signer: tuple[ECKey, float, int] | None = None  # (private key, cached until (monotonic), rotations)
        # (public keys, their kids, loaded at (monotonic), rotations): every request's token is checked against the kids
        self._published: tuple[KeySet, frozenset[str], float, int] | None = None
        self._lock = threading.Lock()

    # -- signing ----------------------------------------------------------------------------------

    def signer(self) -> ECKey:
        """The private key new tokens are signed with (made on first use)."""
        cached, rotations = self._signer, self._rotations
        if cached and cached[1] > time.monotonic() and cached[2] == rotations:
            return cached[0]
        key = self.db.run_read(self._active) or self.db.run_write(self._active_or_new)
        self._signer = (key, time.monotonic() + self.cache_seconds, rotations)
        return key

    def _active_or_new(self, conn: Connection) -> ECKey:
        self.db.advisory_lock(conn, "signing-keys")  # two processes starting at once make one key
        return self._active(conn) or self._create(conn)

    def _active(self, conn: Connection) -> ECKey | None:
        row = conn.execute(
            select(signing_keys.c.kid, signing_keys.c.key_id, signing_keys.c.private_jwk)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        private = self.keyring.decrypt(conn, row.key_id, row.private_jwk, _aad(row.kid))
        return ECKey.import_key(json.loads(private))

    def _create(self, conn: Connection) -> ECKey:
        kid = f"gw-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
        key = ECKey.generate_key(CURVE, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True)
        key_id, ciphertext = self.keyring.encrypt(conn, json.dumps(key.as_dict(private=True)).encode(), _aad(kid))
        conn.execute(
            insert(signing_keys).values(
                kid=kid, algorithm=ALGORITHM, public_jwk=json.dumps(key.as_dict(private=False)), key_id=key_id,
                private_jwk=ciphertext, created_at=now_micros(),
            )
        )
        return key

    # -- verifying and publishing ----------------------------------------------------------------

    def published(self, kid: str | None = None) -> KeySet:
        """Every key whose tokens may still be valid; reloaded when stale or when `kid` is new."""
        return self._current(kid)[0]

    def is_published(self, kid: str) -> bool:
        return kid in self._current()[1]

    def _current(self, kid: str | None = None) -> tuple[KeySet, frozenset[str], float, int]:
        cached = self._published
        age = time.monotonic() - cached[2] if cached else None
        if cached and age < self.cache_seconds and cached[3] == self._rotations:
            if kid is None or kid in cached[1] or age < UNKNOWN_KID_RELOAD_SECONDS:
                return cached
        with self._lock:
            rotations = self._rotations
            rows = self.db.run_read(lambda conn: conn.execute(select(signing_keys.c.public_jwk)).scalars().all())
            keys = KeySet([ECKey.import_key(json.loads(r)) for r in rows])
            current = self._published = (keys, frozenset(k.kid for k in keys.keys), time.monotonic(), rotations)
        return current

    def jwks(self) -> dict:
        """The document served at /.well-known/jwks.json."""
        self.signer()  # a fresh gateway publishes the key it is about to sign with
        return {"keys": [k.as_dict(private=False) for k in self.published().keys]}

    # -- operating ------------------------------------------------------------------------------

    def rotate(self, revoke_previous: bool = False) -> RotationResult:
        result = self.db.run_write(lambda conn: self._rotate(conn, revoke_previous))
        self._rotations += 1  # after the commit: every cached key is read again, and sees the new keys
        return result

    def _rotate(self, conn: Connection, revoke_previous: bool) -> RotationResult:
        self.db.advisory_lock(conn, "signing-keys")
        now = now_micros()
        retired = list(conn.execute(select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))).scalars())
        conn.execute(update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=now))
        new_kid = self._create(conn).kid
        # a process may sign with a retired key until its cache expires; its tokens live a lifetime more
        horizon = now - int((self.token_lifetime_seconds + self.cache_seconds + 60) * 1_000_000)
        doomed = signing_keys.c.kid != new_kid
        if not revoke_previous:
            doomed = doomed & (signing_keys.c.retired_at < horizon)
        deleted = list(conn.execute(select(signing_keys.c.kid).where(doomed)).scalars())
        conn.execute(delete(signing_keys).where(doomed))
        return RotationResult(new_kid, retired, deleted)

    def status(self) -> list[SigningKeyInfo]:
        rows = self.db.run_read(
            lambda conn: conn.execute(
                select(signing_keys.c.kid, signing_keys.c.algorithm, signing_keys.c.created_at, signing_keys.c.retired_at)
                .order_by(signing_keys.c.created_at)
            ).all()
        )
        return [SigningKeyInfo(r.kid, r.algorithm, r.created_at, r.retired_at) for r in rows]
