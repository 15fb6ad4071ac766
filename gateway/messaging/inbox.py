"""The inbox: an agency without Kafka reads its outbound topic over HTTPS (long poll) and
acknowledges what it has handled. Positions are rows in the database, per agency and partition,
so any gateway process can serve the next poll, on either transport.

An acknowledgement is cumulative within a partition (as a Kafka commit is): acknowledging a
message acknowledges the ones before it in its partition. Until acknowledged, a message is
handed out again, so an agency that crashes mid-batch loses nothing.
"""

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from gateway.connectors import topics
from gateway.connectors.transport import DeliveredMessage, Transport
from gateway.errors import InvalidRequest
from gateway.store.database import Database
from gateway.store.schema import inbox_positions


@dataclass(frozen=True)
class InboxEntry:
    id: str  # "<partition>-<offset>": what the agency acknowledges
    message: DeliveredMessage


class Inbox:
    def __init__(self, db: Database, transport: Transport):
        self.db = db
        self.transport = transport

    def poll(self, agency_id: str, max_messages: int, wait_seconds: float) -> list[InboxEntry]:
        positions = self.db.run_read(lambda conn: self._positions(conn, agency_id))
        found = self.transport.read(topics.outbound(agency_id), positions, max_messages, wait_seconds)
        return [InboxEntry(f"{m.partition}-{m.offset}", m) for m in found]

    def ack(self, agency_id: str, entry_id: str) -> None:
        partition, offset = _parse(entry_id)
        self.db.run_write(lambda conn: self._advance(conn, agency_id, partition, offset + 1))

    def _positions(self, conn: Connection, agency_id: str) -> dict[int, int]:
        rows = conn.execute(select(inbox_positions).where(inbox_positions.c.agency_id == agency_id))
        return {r.partition: r.next_offset for r in rows}

    def _advance(self, conn: Connection, agency_id: str, partition: int, next_offset: int) -> None:
        where = (inbox_positions.c.agency_id == agency_id) & (inbox_positions.c.partition == partition)
        current = conn.execute(select(inbox_positions.c.next_offset).where(where).with_for_update()).scalar()
        if current is None:
            conn.execute(insert(inbox_positions).values(agency_id=agency_id, partition=partition, next_offset=next_offset))
        elif next_offset > current:  # acknowledgements never move backwards
            conn.execute(update(inbox_positions).where(where).values(next_offset=next_offset))


def _parse(entry_id: str) -> tuple[int, int]:
    partition, _, offset = entry_id.partition("-")
    if not (partition.isdigit() and offset.isdigit()):
        raise InvalidRequest.at("id", f"'{entry_id}' is not an inbox entry id (<partition>-<offset>, as the inbox gave it)")
    return int(partition), int(offset)
