"""Versioned resources, search index and data keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_resources_type_updated", "resources", ["resource_type", "last_updated"])
    op.create_table(
        "resource_versions",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("last_updated", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_resource_versions_key", "resource_versions", ["key_id"])
    op.create_index("ix_resource_versions_type_updated", "resource_versions", ["resource_type", "last_updated"])
    op.create_table(
        "search_index",
        sa.Column("row_id", RowId, primary_key=True, autoincrement=True),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=True),
        sa.Column("value", sa.String(512), nullable=True),
        sa.Column("raw", sa.Text, nullable=True),
        sa.Column("lo", sa.BigInteger, nullable=True),
        sa.Column("hi", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_search_value", "search_index", ["resource_type", "param", "value"])
    op.create_index("ix_search_date", "search_index", ["resource_type", "param", "lo", "hi"])
    op.create_index("ix_search_resource", "search_index", ["resource_type", "resource_id"])
    op.create_table(
        "data_keys",
        sa.Column("kid", sa.String(32), primary_key=True),
        sa.Column("kek_id", sa.String(32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("retired_at", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    for table in ("data_keys", "search_index", "resource_versions", "resources"):
        op.drop_table(table)
