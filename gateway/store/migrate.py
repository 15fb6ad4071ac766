"""Bring a database's schema to the newest Alembic revision."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: several gateway processes starting at once on one PostgreSQL take turns.
_MIGRATION_LOCK = 72_010_001


def upgrade(db: Database, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def run(conn) -> None:
        if not db.is_sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    db.run_write(run)
