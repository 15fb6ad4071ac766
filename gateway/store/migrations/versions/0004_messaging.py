"""Messaging: the embedded queue, the transactional outbox, processed message ids, dead letters.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "queue_topics",
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("partitions", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "queue_messages",
        sa.Column("offset", RowId, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("msg_key", sa.String(128), nullable=True),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("published_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_queue_messages_topic", "queue_messages", ["topic", "partition", "offset"])
    op.create_table(
        "queue_positions",
        sa.Column("consumer_group", sa.String(128), primary_key=True),
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "inbox_positions",
        sa.Column("agency_id", sa.String(64), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("msg_key", sa.String(128), nullable=True),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at", "id"])
    op.create_table(
        "processed_messages",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("processed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("msg_key", sa.String(128), nullable=True),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("failed_at", sa.BigInteger, nullable=False),
        sa.Column("replayed_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_dead_letters_open", "dead_letters", ["replayed_at", "id"])


def downgrade() -> None:
    for table in ("dead_letters", "processed_messages", "outbox", "inbox_positions", "queue_positions", "queue_messages", "queue_topics"):
        op.drop_table(table)
