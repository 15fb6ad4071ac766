"""Handled message ids by age, so the oldest can be forgotten once their retention has passed.

Revision ID: 0008
Revises: 0007

gateway.messaging.retention.IdempotencyRetention deletes the oldest records first, a batch at a
time; without this index each batch scanned the whole table.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_processed_messages_at", "processed_messages", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_messages_at", table_name="processed_messages")
