"""Change marks, so the release path keeps each case's context between transactions.

Revision ID: 0009
Revises: 0008

gateway.store.change_marks: every write of an EpisodeOfCare, CareTeam, Patient, Consent or
RiskAssessment sets a new mark on what it changes. An empty table is a correct start: a subject
with no mark has not been written since, and a context read then is kept against "no mark".
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_marks",
        sa.Column("subject", sa.String(140), primary_key=True),
        sa.Column("mark", sa.String(36), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("change_marks")
