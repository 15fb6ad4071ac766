"""How long the embedded queue keeps a message (Kafka has its own retention, set on the broker).

A message is deleted once every reader of its partition has passed it and it is older than
GATEWAY_QUEUE_RETENTION_HOURS. The readers are the consumer groups with committed positions
(the gateway reading agencies' inbound topics) and the agencies acknowledging their outbound
topic through the inbox. A partition nobody has a position on keeps everything: an agency whose
system was offline for longer than the retention still receives every RFI when it comes back.
"""

import time

from sqlalchemy import Connection, select

from gateway.connectors import topics
from gateway.connectors.embedded import DatabaseQueue, Position
from gateway.store.schema import inbox_positions


class QueueRetention:
    def __init__(self, queue: DatabaseQueue, retention_hours: float):
        self.queue = queue
        self.retention_us = int(retention_hours * 3_600_000_000)

    def trim(self, conn: Connection) -> int:
        """Delete what every reader has passed and the retention has expired; how many were deleted."""
        published_before = int(time.time() * 1_000_000) - self.retention_us
        return self.queue.trim(conn, self.passed(conn), published_before)

    def passed(self, conn: Connection) -> dict[Position, int]:
        """Each partition's lowest next offset over all of its readers."""
        passed = dict(self.queue.group_positions(conn))
        for row in conn.execute(select(inbox_positions)):
            position = (topics.outbound(row.agency_id), row.partition)
            passed[position] = min(passed.get(position, row.next_offset), row.next_offset)
        return passed
