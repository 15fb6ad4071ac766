"""How long the embedded queue keeps a message (Kafka has its own retention, set on the broker),
and how long a handled message's id is remembered.

A message is deleted once every reader of its partition has passed it and it is older than
GATEWAY_QUEUE_RETENTION_HOURS. The readers are the consumer groups with committed positions
(the gateway reading agencies' inbound topics) and the agencies acknowledging their outbound
topic through the inbox. A partition nobody has a position on keeps everything: an agency whose
system was offline for longer than the retention still receives every RFI when it comes back.

A handled message's id (processed_messages: what makes a redelivery harmless) is forgotten once
it is older than GATEWAY_IDEMPOTENCY_RETENTION_HOURS, 30 days by default: longer than a message
can wait on a topic to be delivered again (Settings refuses one shorter than the queue's).
"""


from sqlalchemy import Connection, delete, select

from gateway.connectors import topics
from gateway.connectors.embedded import TRIM_BATCH, DatabaseQueue, Position
from gateway.fhir.dates import now_micros
from gateway.store.schema import inbox_positions, processed_messages


class QueueRetention:
    def __init__(self, queue: DatabaseQueue, retention_hours: float):
        self.queue = queue
        self.retention_us = int(retention_hours * 3_600_000_000)

    def trim(self, conn: Connection) -> int:
        """Delete what every reader has passed and the retention has expired; how many were deleted."""
        return self.queue.trim(conn, self.passed(conn), _cutoff(self.retention_us))

    def passed(self, conn: Connection) -> dict[Position, int]:
        """Each partition's lowest next offset over all of its readers."""
        passed = dict(self.queue.group_positions(conn))
        for row in conn.execute(select(inbox_positions)):
            position = (topics.outbound(row.agency_id), row.partition)
            passed[position] = min(passed.get(position, row.next_offset), row.next_offset)
        return passed


class IdempotencyRetention:
    def __init__(self, retention_hours: float):
        self.retention_us = int(retention_hours * 3_600_000_000)

    def trim(self, conn: Connection, limit: int | None = None) -> int:
        """Forget the oldest ids past the retention, at most `limit` (TRIM_BATCH); how many."""
        oldest = (
            select(processed_messages.c.message_id).where(processed_messages.c.processed_at < _cutoff(self.retention_us))
            .order_by(processed_messages.c.processed_at).limit(limit or TRIM_BATCH)
        )
        ids = [row.message_id for row in conn.execute(oldest)]
        if not ids:
            return 0
        return conn.execute(delete(processed_messages).where(processed_messages.c.message_id.in_(ids))).rowcount


def _cutoff(retention_us: int) -> int:
    """The time (UTC microseconds) before which a record is past its retention."""
    return now_micros() - retention_us
