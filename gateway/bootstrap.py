"""The composition root: the only place that builds concrete adapters and wires them together.

The API, the CLI and the tests call `build_services`; importing any module never connects to
anything.
"""

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from gateway.api.observability import Metrics
from gateway.audit.ledger import AuditSigner, DisclosureLedger
from gateway.auth.services import Identity, build_identity
from gateway.cases.information_requests import InformationRequests
from gateway.cases.record_release import RecordRelease
from gateway.cases.release import CaseReader, ReleaseCheck
from gateway.cases.repository import CaseRepository
from gateway.cases.service import CaseService
from gateway.auth import signing
from gateway.connectors import embedded, open_transport
from gateway.connectors.embedded import DatabaseQueue
from gateway.connectors.transport import Transport
from gateway.consent.engine import ConsentEngine
from gateway.fhir import conformance
from gateway.fhir.profiles import ProfileRegistry
from gateway.fhir.service import FhirService
from gateway.messaging import dead_letters as dead_letters_module
from gateway.messaging import outbox as outbox_module
from gateway.messaging.dead_letters import DeadLetters
from gateway.messaging.inbox import Inbox
from gateway.messaging.inbound import InboundProcessor
from gateway.messaging.outbox import Outbox, OutboxRelay
from gateway.messaging.retention import IdempotencyRetention, QueueRetention
from gateway.messaging.worker import MessagingWorker
from gateway.settings import Settings
from gateway.store import case_links, migrate
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring, generate_kek, parse_kek
from gateway.store.key_rotation import VERSIONS, SealedColumn
from gateway.store.resources import ResourceStore

log = logging.getLogger("gateway")


@dataclass
class Services:
    settings: Settings
    db: Database
    keyring: DataKeyring
    store: ResourceStore
    fhir: FhirService
    cases: CaseService
    consent: ConsentEngine
    ledger: DisclosureLedger
    metrics: Metrics
    version: str
    transport: Transport
    outbox: Outbox
    dead_letters: DeadLetters
    rfis: InformationRequests
    inbound: InboundProcessor
    relay: OutboxRelay
    inbox: Inbox
    identity: Identity

    def worker(self, overdue_every: float = 60.0) -> MessagingWorker:
        embedded = isinstance(self.transport, DatabaseQueue)  # Kafka keeps what its topics' retention says
        retention = QueueRetention(self.transport, self.settings.queue_retention_hours) if embedded else None
        idempotency = IdempotencyRetention(self.settings.idempotency_retention_hours)
        return MessagingWorker(self.db, self.transport, self.relay, self.inbound, self.rfis, overdue_every, retention, idempotency)

    def close(self) -> None:
        self.transport.close()
        self.db.dispose()


def build_services(settings: Settings, upgrade_schema: bool = True) -> Services:
    keyring = DataKeyring(load_kek(settings), settings.key_cache_seconds)
    consent = ConsentEngine.from_directory(settings.consent_policies_dir)  # a bad policy file stops start-up here, naming file and rule
    db = Database(settings.resolved_database_url())
    db.on_transaction_end(keyring.transaction_ended)
    try:
        if upgrade_schema:
            migrate.upgrade(db)
        db.run_write(keyring.check)  # a wrong GATEWAY_DATA_KEY stops start-up here, not on the first read
    except BaseException:
        db.dispose()
        raise
    store = ResourceStore(keyring)
    if upgrade_schema:
        case_links.run_pending_backfill(db, store)  # a database from before 0006: derive its case links (needs the key)
    published = conformance.load_profiles(settings.profiles_dir) if settings.profiles_dir.is_dir() else []
    if upgrade_schema:
        conformance.publish(db, store, published)
    ledger = DisclosureLedger(db, store, load_audit_signer(settings))
    reader = CaseReader(store)  # one per process: it keeps the cases' release contexts
    release = RecordRelease(reader, consent, ledger, _utc_now)
    fhir = FhirService(db, store, ProfileRegistry(published), release=release)
    outbox = Outbox(keyring)
    dead_letters = DeadLetters(keyring, outbox)
    rfis = InformationRequests(store, reader, fhir.accept, ReleaseCheck(consent, ledger), outbox, _utc_now)
    cases = CaseService(db, CaseRepository(store), rfis, release=release)
    transport = open_transport(settings, db, keyring)
    relay = OutboxRelay(db, keyring, transport, partitions=settings.kafka_partitions, replication=settings.kafka_replication)
    inbound = InboundProcessor(db, dead_letters, rfis.handle, relay.wake, rfis.check)
    return Services(
        settings, db, keyring, store, fhir, cases, consent, ledger, Metrics(), _version(), transport, outbox, dead_letters, rfis,
        inbound, relay, Inbox(db, transport), identity=build_identity(settings, db, store, keyring),
    )


def sealed_columns() -> tuple[SealedColumn, ...]:
    """Everything sealed with a data key, which `gateway keys rotate` re-encrypts."""
    return (VERSIONS, outbox_module.SEALED, embedded.SEALED, dead_letters_module.SEALED, signing.SEALED)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def load_kek(settings: Settings) -> bytes:
    """GATEWAY_DATA_KEY, or for development a key generated once into the data directory."""
    return parse_kek(_secret(settings, settings.data_key, "data-key", "GATEWAY_DATA_KEY"))


def load_audit_signer(settings: Settings) -> AuditSigner:
    """GATEWAY_AUDIT_SIGNING_KEY, or for development a key generated once into the data directory."""
    raw = _secret(settings, settings.audit_signing_key, "audit-signing-key", "GATEWAY_AUDIT_SIGNING_KEY")
    return AuditSigner.from_bytes(parse_kek(raw))


def _secret(settings: Settings, configured: str, file_name: str, variable: str) -> str:
    if configured:
        return configured
    path = settings.data_dir / file_name
    if not path.exists():
        _write_private(path, generate_kek())
        log.warning("generated a development key at %s; set %s in production", path, variable)
    return path.read_text()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _version() -> str:
    try:
        return version("gateway")
    except PackageNotFoundError:
        return "0+unknown"
