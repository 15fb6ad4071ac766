"""Messages the gateway could not handle (malformed, unauthorised, for an unknown agency), kept
with the reason, so an operator can see them (`gateway dlq list`) and replay them once the
cause is fixed (`gateway dlq replay`).

Each is a row (encrypted like everything that may carry personal information) and, through the
outbox, a copy on the dead-letter topic with the reason in its headers, for tools that watch
the transport. Replaying forgets that the message id was handled and sends the original back to
the topic it came from, in one transaction.
"""

from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from gateway.connectors import topics
from gateway.connectors.transport import MESSAGE_ID, DeliveredMessage, OutgoingMessage
from gateway.fhir.dates import now_micros
from gateway.messaging.bundles import is_message_id
from gateway.messaging.outbox import Outbox
from gateway.store.encryption import DataKeyring
from gateway.store.key_rotation import SealedColumn
from gateway.store.schema import dead_letters, processed_messages

REASON_CODE, REASON, ORIGINAL_TOPIC = "dead-letter-reason-code", "dead-letter-reason", "dead-letter-topic"


@dataclass(frozen=True)
class DeadLetter:
    id: int
    message_id: str | None
    topic: str
    reason_code: str
    reason: str
    failed_at: int  # UTC microseconds
    replayed_at: int | None


class DeadLetters:
    def __init__(self, keyring: DataKeyring, outbox: Outbox):
        self.keyring = keyring
        self.outbox = outbox

    def add(self, conn: Connection, message: DeliveredMessage, reason_code: str, reason: str) -> int:
        headers = dict(message.headers)
        message_id = message.message_id if is_message_id(message.message_id) else None
        kid, blob = self.keyring.encrypt(conn, message.value, _aad(message.topic, message_id))
        row_id = conn.execute(
            insert(dead_letters).values(
                message_id=message_id, topic=message.topic, msg_key=message.key, headers=orjson.dumps(headers).decode(),
                key_id=kid, payload=blob, reason_code=reason_code, reason=reason, failed_at=now_micros(),
            ).returning(dead_letters.c.id)
        ).scalar_one()
        copy = {**headers, MESSAGE_ID: f"dead-letter-{row_id}-{message_id or ''}"[:64],
                REASON_CODE: reason_code, REASON: reason, ORIGINAL_TOPIC: message.topic}
        self.outbox.add(conn, OutgoingMessage(topics.DEAD_LETTER, message.key, message.value, copy))
        return row_id

    def list(self, conn: Connection, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
        query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        return [
            DeadLetter(r.id, r.message_id, r.topic, r.reason_code, r.reason, r.failed_at, r.replayed_at)
            for r in conn.execute(query)
        ]

    def replay(self, conn: Connection, dead_letter_id: int) -> bool:
        """Send the original back to its topic; False if it is unknown or was replayed already."""
        row = conn.execute(
            select(dead_letters).where(dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None))
        ).first()
        if row is None:
            return False
        value = self.keyring.decrypt(conn, row.key_id, row.payload, _aad(row.topic, row.message_id))
        headers = orjson.loads(row.headers)
        if row.message_id:
            conn.execute(delete(processed_messages).where(processed_messages.c.message_id == row.message_id))
            headers[MESSAGE_ID] = row.message_id
        else:  # it had no id at all: it cannot be handled until the sender fixes it, but it can be retried
            headers[MESSAGE_ID] = f"replay-{row.id}-{now_micros()}"
        self.outbox.add(conn, OutgoingMessage(row.topic, row.msg_key, value, headers))
        conn.execute(update(dead_letters).where(dead_letters.c.id == row.id).values(replayed_at=now_micros()))
        return True


def _aad(topic: str, message_id: str | None) -> bytes:
    return f"dead-letter:{topic}:{message_id or ''}".encode()


SEALED = SealedColumn("dead letters", dead_letters, "payload", lambda row: _aad(row.topic, row.message_id))  # re-encrypted on key rotation
