"""The disclosure ledger: every release and refusal as an AuditEvent, hash-chained and signed.

`record` runs inside the caller's transaction, so an AuditEvent is written with the release it
records or not at all. Each entry stores the SHA-256 of the AuditEvent's stored bytes and a chain
value, SHA-256(previous chain + digest); a checkpoint signs (Ed25519) the chain value at a
sequence number, every CHECKPOINT_EVERY entries and on `gateway audit sign`. `verify` walks the
chain: a removed entry leaves a gap, a reordered or edited entry breaks the chain, a changed
AuditEvent no longer matches its digest, and a rewritten chain no longer matches the signed
checkpoints. (Entries appended after the last checkpoint are protected by the chain only.)
"""

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, func, insert, select

from gateway.fhir.dates import now_micros
from gateway.fhir.indexing import index_entries
from gateway.store.database import Database
from gateway.store import deferred
from gateway.store.prepared import Prepared, PreparedRows
from gateway.store.resources import ResourceStore
from gateway.store.savepoint import transaction_memo
from gateway.store.schema import audit_chain, audit_checkpoints

GENESIS = "0" * 64
CHECKPOINT_EVERY = 100
_TIP = "audit-chain-tip"
# every release and refusal appends: compiled once (gateway.store.prepared)
_HEAD = Prepared(
    select(audit_chain.c.seq, audit_chain.c.chain).where(audit_chain.c.seq == select(func.max(audit_chain.c.seq)).scalar_subquery())
)
_APPEND = PreparedRows(audit_chain, [c.name for c in audit_chain.columns])  # at the job's end (gateway.store.deferred)
_CHECKPOINT = Prepared(insert(audit_checkpoints), [c.name for c in audit_checkpoints.columns])


class AuditSigner:
    """The Ed25519 key that signs checkpoints; its public key verifies them."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._private = private_key
        self.public_key = private_key.public_key()
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def from_bytes(cls, raw: bytes) -> "AuditSigner":
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def sign(self, seq: int, chain: str) -> bytes:
        return self._private.sign(_checkpoint_message(seq, chain))


@dataclass
class Verification:
    entries: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


class DisclosureLedger:
    def __init__(self, db: Database, store: ResourceStore, signer: AuditSigner):
        self.db = db
        self.store = store
        self.signer = signer

    def record(self, conn: Connection, event: dict) -> int:
        """Store the AuditEvent and chain it, in the caller's transaction; return its sequence number.

        Its rows are inserted when the caller's write job ends (gateway.store.deferred): nothing
        in a write job reads AuditEvents back, and a batch's events then take one statement per
        table rather than four each."""
        seq, previous = self._next(conn)
        stored = self.store.create_at_job_end(conn, event, "AuditEvent", index_entries(event))
        digest = hashlib.sha256(stored.body).hexdigest()
        chain = _chain(previous, digest)
        deferred.append(conn, _APPEND, [(seq, event["id"], stored.version_id, digest, chain, stored.last_updated)])
        transaction_memo(conn)[_TIP] = (seq, chain)
        if seq % CHECKPOINT_EVERY == 0:
            self._checkpoint(conn, seq, chain)
        return seq

    def _next(self, conn: Connection) -> tuple[int, str]:
        """The next sequence number and the chain value it follows: the last entry still waiting
        for the job's end, else the tip this transaction appended last (it holds the chain's lock
        until it ends: a batch of messages appends several entries, and reading the tip back each
        time cost a statement), else the chain's head as stored."""
        waiting = deferred.last(conn, _APPEND)
        if waiting is not None:
            return waiting[0] + 1, waiting[4]
        tip = transaction_memo(conn).get(_TIP)
        if tip is None:
            self.db.advisory_lock(conn, "audit-chain")  # one chain: appends from all processes take turns
            tip = _HEAD.first(conn, {}) or (0, GENESIS)
        return tip[0] + 1, tip[1]

    def sign_head(self) -> int | None:
        """Sign the newest entry now (`gateway audit sign`); return its sequence number."""

        def job(conn: Connection) -> int | None:
            self.db.advisory_lock(conn, "audit-chain")
            head = conn.execute(select(audit_chain.c.seq, audit_chain.c.chain).order_by(audit_chain.c.seq.desc()).limit(1)).first()
            if head is None or conn.execute(select(audit_checkpoints.c.seq).where(audit_checkpoints.c.seq == head.seq)).first():
                return head.seq if head else None
            self._checkpoint(conn, head.seq, head.chain)
            return head.seq

        return self.db.run_write(job)

    def _checkpoint(self, conn: Connection, seq: int, chain: str) -> None:
        signature = self.signer.sign(seq, chain)
        row = {"seq": seq, "chain": chain, "key_id": self.signer.key_id, "signature": signature, "signed_at": now_micros()}
        _CHECKPOINT.execute(conn, row).close()

    def verify(self, trusted_keys: dict[str, Ed25519PublicKey] | None = None) -> Verification:
        keys = trusted_keys or {self.signer.key_id: self.signer.public_key}
        return self.db.run_read(lambda conn: _verify(conn, self.store, keys))


def _verify(conn: Connection, store: ResourceStore, keys: dict[str, Ed25519PublicKey]) -> Verification:
    result = Verification()
    chains: dict[int, str] = {}
    previous, expected_seq = GENESIS, 1
    for row in conn.execute(select(audit_chain).order_by(audit_chain.c.seq)):
        result.entries += 1
        if row.seq != expected_seq:
            result.problems.append(f"entries {expected_seq}..{row.seq - 1} are missing")
        expected_seq = row.seq + 1
        if _chain(previous, row.digest) != row.chain:
            result.problems.append(f"entry {row.seq}: chain broken (edited or reordered)")
        previous = row.chain
        chains[row.seq] = row.chain
        result.problems.extend(_check_event(conn, store, row))
    for checkpoint in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)):
        result.checkpoints += 1
        key = keys.get(checkpoint.key_id)
        if key is None:
            result.problems.append(f"checkpoint {checkpoint.seq}: signed by unknown key {checkpoint.key_id}")
            continue
        try:
            key.verify(checkpoint.signature, _checkpoint_message(checkpoint.seq, checkpoint.chain))
        except InvalidSignature:
            result.problems.append(f"checkpoint {checkpoint.seq}: signature does not verify")
        if chains.get(checkpoint.seq) != checkpoint.chain:
            result.problems.append(f"checkpoint {checkpoint.seq}: the chain no longer matches what was signed")
    last = max(chains, default=0)
    if (conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar() or 0) > last:
        result.problems.append("a signed checkpoint refers to entries that are gone")
    return result


def _check_event(conn: Connection, store: ResourceStore, row) -> list[str]:
    try:
        recorded = store.version(conn, "AuditEvent", row.event_id, row.event_version)
        current = store.current(conn, "AuditEvent", row.event_id)
    except Exception as exc:  # a body that fails its integrity check is itself the finding
        return [f"entry {row.seq}: AuditEvent/{row.event_id} cannot be read ({exc})"]
    if recorded is None or recorded.body is None:
        return [f"entry {row.seq}: AuditEvent/{row.event_id} is gone"]
    problems = []
    if hashlib.sha256(recorded.body).hexdigest() != row.digest:
        problems.append(f"entry {row.seq}: AuditEvent/{row.event_id} was altered")
    if current is None or current.version_id != row.event_version:
        problems.append(f"entry {row.seq}: AuditEvent/{row.event_id} was changed after it was recorded")
    return problems


def _chain(previous: str, digest: str) -> str:
    return hashlib.sha256(f"{previous}{digest}".encode()).hexdigest()


def _checkpoint_message(seq: int, chain: str) -> bytes:
    return f"gateway-audit-checkpoint:{seq}:{chain}".encode()
