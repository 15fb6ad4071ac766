"""Case access: which case each resource belongs to, and each case's team.

Revision ID: 0006
Revises: 0005

The links are derived from resource bodies, which are encrypted under the data key that
migrations never hold, so a database that already has resources is marked for a backfill that
the next start-up runs (`gateway.store.case_links.run_pending_backfill`).
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_cases",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("via_type", sa.String(64), primary_key=True),
        sa.Column("via_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_resource_cases_via", "resource_cases", ["via_type", "via_id"])
    op.create_table(
        "person_resources",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_person_resources_patient", "person_resources", ["patient_id"])
    op.create_table(
        "care_team_agencies",
        sa.Column("care_team_id", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "case_agencies",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.String(64), primary_key=True),
    )
    backfills = op.create_table(
        "pending_backfills",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("requested_at", sa.BigInteger, nullable=False),
    )
    if op.get_bind().execute(sa.text("SELECT 1 FROM resources LIMIT 1")).first() is not None:
        op.bulk_insert(backfills, [{"name": "case-links", "requested_at": time.time_ns() // 1000}])


def downgrade() -> None:
    op.drop_table("pending_backfills")
    op.drop_table("case_agencies")
    op.drop_table("care_team_agencies")
    op.drop_index("ix_person_resources_patient", table_name="person_resources")
    op.drop_table("person_resources")
    op.drop_index("ix_resource_cases_via", table_name="resource_cases")
    op.drop_table("resource_cases")
