"""The background work of one gateway process: relay the outbox, handle what agencies send, and
mark overdue RFIs. Every process may run it at once (DESIGN 10): the outbox is claimed row by
row, inbound topics are shared by one consumer group, and overdue marking is idempotent."""

import logging
import threading

from gateway.cases.information_requests import InformationRequests
from gateway.connectors.transport import Transport
from gateway.messaging.inbound import InboundProcessor
from gateway.messaging.outbox import OutboxRelay
from gateway.store.database import Database

log = logging.getLogger("gateway.worker")


class MessagingWorker:
    def __init__(
        self, db: Database, transport: Transport, relay: OutboxRelay, inbound: InboundProcessor, rfis: InformationRequests,
        overdue_every: float = 60.0,
    ):
        self.db = db
        self.transport = transport
        self.relay = relay
        self.inbound = inbound
        self.rfis = rfis
        self.overdue_every = overdue_every
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        for name, target in (("outbox-relay", self._relay), ("inbound", self._inbound), ("overdue-rfis", self._overdue)):
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

    def _overdue(self) -> None:
        while not self._stop.wait(self.overdue_every):
            try:
                marked = self.db.run_write(self.rfis.mark_overdue)
            except Exception as exc:  # retried at the next tick
                log.warning("overdue check failed: %s", type(exc).__name__)
                continue
            if marked:
                log.info("%d RFIs newly overdue; requesters and lead agencies told", marked)
                self.relay.wake()
