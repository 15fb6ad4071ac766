"""Envelope encryption of resource bodies at rest (AES-256-GCM).

GATEWAY_DATA_KEY is the key-encryption key (KEK). It never encrypts data directly: it wraps
data keys, which live in the `data_keys` table, so every gateway process sharing the database
finds a key that another process created. Each body row records the `key_id` that encrypted it;
rotation adds a new active key and re-encrypts rows in small batches while the API keeps serving
(gateway.store.key_rotation). The associated data binds a ciphertext to its row, so a body
copied onto another resource or version fails to decrypt instead of being served.
"""

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, insert, select, update

from gateway.fhir.dates import now_micros
from gateway.store.schema import data_keys

NONCE_BYTES = 12
NONCES_PER_DRAW = 1024
_CREATED = "data_keys_created"  # conn.info: the key ids this connection created (DataKeyring.active_kid)


class NonceSource:
    """Random 96-bit GCM nonces, drawn from the OS a thousand at a time.

    os.urandom releases the GIL, and every release costs the writer thread a wait to get it back
    from the threads parsing and relaying messages: drawn one per encryption, it was 6% of the
    writer's time under inbound load. A nonce is never handed out twice: the pool is taken under
    a lock, and a forked child forgets its parent's pool (it would repeat the parent's next nonces)."""

    def __init__(self, per_draw: int = NONCES_PER_DRAW):
        self._per_draw = per_draw
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def take(self) -> bytes:
        with self._lock:
            if self._at == len(self._pool):
                self._pool, self._at = os.urandom(NONCE_BYTES * self._per_draw), 0
            self._at += NONCE_BYTES
            return self._pool[self._at - NONCE_BYTES : self._at]

    def _forget(self) -> None:
        self._lock = threading.Lock()  # a new one: the parent's may have been held by a thread the child lacks
        self._pool, self._at = b"", 0


_NONCES = NonceSource()


class DataKeyError(Exception):
    """A data key cannot be used: wrong GATEWAY_DATA_KEY, unknown key id, or tampered data."""


def version_aad(resource_type: str, resource_id: str, version: int) -> bytes:
    """Associated data that binds a body's ciphertext to its own row."""
    return f"{resource_type}/{resource_id}/{version}".encode()


def generate_kek() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_kek(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise DataKeyError("GATEWAY_DATA_KEY must be 32 bytes in base64url; generate one with `gateway keys generate`")
    return raw


def kek_id(kek: bytes) -> str:
    """A fingerprint that names a KEK without revealing it."""
    return hmac.new(kek, b"gateway key-encryption-key id", hashlib.sha256).hexdigest()[:16]


class DataKeyring:
    def __init__(self, kek: bytes, cache_seconds: float = 5.0):
        self._kek = AESGCM(kek)
        self._kek_id = kek_id(kek)
        self._cache_seconds = cache_seconds
        self._keys: dict[str, AESGCM] = {}
        self._active: tuple[str, float] | None = None  # (kid, expires at)
        self._lock = threading.Lock()

    # -- data ---------------------------------------------------------------------------------

    def encrypt(self, conn: Connection, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        return self.encrypt_with(conn, self.active_kid(conn), plaintext, aad)

    def encrypt_with(self, conn: Connection, kid: str, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = _NONCES.take()
        return kid, nonce + self._key(conn, kid).encrypt(nonce, plaintext, aad)

    def decrypt(self, conn: Connection, kid: str, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._key(conn, kid).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DataKeyError(f"stored data failed its integrity check (key {kid}); it was altered or misplaced") from None

    # -- keys ---------------------------------------------------------------------------------

    def active_kid(self, conn: Connection) -> str:
        """The key new bodies are sealed with. Only a key read back from a committed row is cached:
        one this transaction created, or found created by itself, is used in it alone. Cached,
        a key whose transaction then rolled back would seal other transactions' bodies with a key
        id that is in no row, and they could never be read again once this process had gone."""
        cached = self._active
        if cached and cached[1] > time.monotonic():
            return cached[0]
        kid = conn.execute(select(data_keys.c.kid).where(data_keys.c.active)).scalar()
        if kid is None:
            return self.create_key(conn, activate=True)
        if kid not in conn.info.get(_CREATED, ()):
            self._active = (kid, time.monotonic() + self._cache_seconds)
        return kid

    def create_key(self, conn: Connection, activate: bool) -> str:
        """A new data key, in `conn`'s transaction (other transactions find it once it commits)."""
        kid = secrets.token_hex(8)
        raw = AESGCM.generate_key(bit_length=256)
        nonce = _NONCES.take()
        wrapped = nonce + self._kek.encrypt(nonce, raw, kid.encode())
        if activate:
            conn.execute(update(data_keys).where(data_keys.c.active).values(active=False))
        conn.execute(
            insert(data_keys).values(
                kid=kid, kek_id=self._kek_id, wrapped=wrapped, created_at=now_micros(), active=activate
            )
        )
        conn.info.setdefault(_CREATED, set()).add(kid)  # until the transaction ends (transaction_ended)
        with self._lock:
            self._keys[kid] = AESGCM(raw)  # found by id only, and the id only in a row that committed
        if activate:
            self._active = None  # the previous active key's cache ends with its row's flag
        return kid

    @staticmethod
    def transaction_ended(info: dict) -> None:
        """A Database.on_transaction_end listener: the keys a transaction created are committed or
        gone now, so what `active_kid` reads from here on may be cached."""
        info.pop(_CREATED, None)

    def check(self, conn: Connection) -> str:
        """Fail early, with a clear message, if GATEWAY_DATA_KEY cannot open this database's keys."""
        kid = self.active_kid(conn)
        self._key(conn, kid)
        return kid

    def _key(self, conn: Connection, kid: str) -> AESGCM:
        key = self._keys.get(kid)
        if key is not None:
            return key
        row = conn.execute(select(data_keys.c.kek_id, data_keys.c.wrapped).where(data_keys.c.kid == kid)).first()
        if row is None:
            raise DataKeyError(f"data key {kid} is not in this database")
        if row.kek_id != self._kek_id:
            raise DataKeyError(
                f"GATEWAY_DATA_KEY (id {self._kek_id}) is not the key that wrapped data key {kid} "
                f"(wrapped by key id {row.kek_id}); start the gateway with the right key"
            )
        nonce, wrapped = row.wrapped[:NONCE_BYTES], row.wrapped[NONCE_BYTES:]
        key = AESGCM(self._kek.decrypt(nonce, wrapped, kid.encode()))
        with self._lock:
            self._keys[kid] = key
        return key
