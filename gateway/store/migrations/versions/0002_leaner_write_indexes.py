"""Fewer index pages per write: partial search indexes, no version-table secondary indexes.

Every create touches each index's pages, and on SQLite each touched page is written to the WAL
and fsynced at commit. Token, string and reference rows never have a date range and date rows
never have a value, so each search index now holds only the rows it can match. The version
table's key_id and (type, last_updated) indexes served only key rotation (which scans anyway)
and type-level history; both now use the primary key.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_resource_versions_key", table_name="resource_versions")
    op.drop_index("ix_resource_versions_type_updated", table_name="resource_versions")
    op.drop_index("ix_search_value", table_name="search_index")
    op.drop_index("ix_search_date", table_name="search_index")
    value, dated = sa.text("value IS NOT NULL"), sa.text("lo IS NOT NULL")
    op.create_index(
        "ix_search_value", "search_index", ["resource_type", "param", "value"], sqlite_where=value, postgresql_where=value
    )
    op.create_index(
        "ix_search_date", "search_index", ["resource_type", "param", "lo", "hi"], sqlite_where=dated, postgresql_where=dated
    )


def downgrade() -> None:
    op.drop_index("ix_search_date", table_name="search_index")
    op.drop_index("ix_search_value", table_name="search_index")
    op.create_index("ix_search_value", "search_index", ["resource_type", "param", "value"])
    op.create_index("ix_search_date", "search_index", ["resource_type", "param", "lo", "hi"])
    op.create_index("ix_resource_versions_type_updated", "resource_versions", ["resource_type", "last_updated"])
    op.create_index("ix_resource_versions_key", "resource_versions", ["key_id"])
