"""Fixed statements compiled once per dialect and run on the transaction's DBAPI cursor.

SQLAlchemy compiles them (so SQL stays portable between SQLite and PostgreSQL) but its
per-execution machinery costs 30-60 us a statement on this machine, more than the statement
itself; the hot paths (write a version, read the current one) run a handful of fixed
statements per request. These run inside the same transaction as the SQLAlchemy connection
they are given, so they mix freely with ordinary Core statements.
"""

from typing import Any, Iterable, Sequence

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement


class Prepared:
    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None):
        self.statement = statement
        self.columns = columns  # for an INSERT: the columns it sets (the rest take their defaults)
        self._by_dialect: dict[str, tuple[str, Sequence[str] | None]] = {}

    def execute(self, conn: Connection, params: dict[str, Any]):
        sql, order = self._compiled(conn)
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(sql, [params[name] for name in order] if order is not None else params)
        return cursor

    def executemany(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        sql, order = self._compiled(conn)
        cursor = conn.connection.dbapi_connection.cursor()
        if order is not None:
            cursor.executemany(sql, [[row[name] for name in order] for row in rows])
        else:
            cursor.executemany(sql, list(rows))
        cursor.close()

    def first(self, conn: Connection, params: dict[str, Any]) -> tuple | None:
        cursor = self.execute(conn, params)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def rowcount(self, conn: Connection, params: dict[str, Any]) -> int:
        cursor = self.execute(conn, params)
        count = cursor.rowcount
        cursor.close()
        return count

    def _compiled(self, conn: Connection) -> tuple[str, Sequence[str] | None]:
        dialect = conn.dialect
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
            # positional paramstyles (qmark: SQLite) need the bind names in order
            order = list(compiled.positiontup) if compiled.positional else None
            found = self._by_dialect[dialect.name] = (compiled.string, order)
        return found
