"""The holder of each resource version: the agency whose system wrote it.

Revision ID: 0007
Revises: 0006

A FHIR read or search by another agency releases that agency's information, so the consent
engine needs to know whose it is (gateway.cases.record_release). Versions written before this
column, and those the gateway writes itself, have none: the case's lead agency holds them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("resource_versions", sa.Column("holder", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resource_versions") as batch:
        batch.drop_column("holder")
