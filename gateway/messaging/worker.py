"""The background work of one gateway process: relay the outbox, handle what agencies send, mark
overdue RFIs, trim the embedded queue and forget old handled-message ids. Every process may run
it at once (DESIGN 10): the outbox is claimed row by row, inbound topics are shared by one
consumer group, and overdue marking and trimming are idempotent."""

import logging
import threading

from gateway.cases.information_requests import InformationRequests
from gateway.connectors.transport import Transport
from gateway.messaging.inbound import InboundProcessor
from gateway.messaging.outbox import OutboxRelay
from gateway.messaging.retention import IdempotencyRetention, QueueRetention
from gateway.store.database import Database

log = logging.getLogger("gateway.worker")
TRIM_ROUNDS = 20  # trims per housekeeping tick at most


class MessagingWorker:
    def __init__(
        self, db: Database, transport: Transport, relay: OutboxRelay, inbound: InboundProcessor, rfis: InformationRequests,
        overdue_every: float = 60.0, retention: QueueRetention | None = None,
        idempotency: IdempotencyRetention | None = None,
    ):
        self.db = db
        self.transport = transport
        self.relay = relay
        self.inbound = inbound
        self.rfis = rfis
        self.overdue_every = overdue_every  # also how often the queue and the handled ids are trimmed
        self.retention = retention  # the embedded queue's; None on Kafka (the broker's own)
        self.idempotency = idempotency
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        for name, target in (("outbox-relay", self._relay), ("inbound", self._inbound), ("housekeeping", self._housekeeping)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.relay.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.relay.release_handed()  # handed over by a batch that finished after the relay stopped

    def _relay(self) -> None:
        self.relay.run(self._stop)

    def _inbound(self) -> None:
        # The relay takes each batch's outbox rows from memory as soon as the batch commits,
        # rather than claiming them in a transaction of its own behind the next batch.
        self.inbound.run(self.transport, self._stop, relay=self.relay)

    def _housekeeping(self) -> None:
        while not self._stop.wait(self.overdue_every):
            if marked := self._write("overdue check", self.rfis.mark_overdue):
                log.info("%d RFIs newly overdue; requesters and lead agencies told", marked)
                self.relay.wake()
            if self.retention is not None:
                self._trim("queued messages past their retention, read by every reader", self.retention.trim)
            if self.idempotency is not None:
                self._trim("handled message ids past their retention", self.idempotency.trim)

    def _trim(self, what: str, trim) -> None:
        """Short transactions of at most TRIM_BATCH each, until nothing more is due (or TRIM_ROUNDS
        of them: a backlog is worked off over several ticks, the writer never held long)."""
        trimmed = 0
        for _ in range(TRIM_ROUNDS):
            if self._stop.is_set() or not (deleted := self._write(f"trimming {what}", trim)):
                break
            trimmed += deleted
        if trimmed:
            log.info("%d %s deleted", trimmed, what)

    def _write(self, what: str, job) -> int:
        try:
            return self.db.run_write(job)
        except Exception as exc:  # retried at the next tick
            log.warning("%s failed: %s", what, type(exc).__name__)
            return 0
