"""Fixed statements compiled once per dialect and run on the transaction's DBAPI cursor.

SQLAlchemy compiles them (so SQL stays portable between SQLite and PostgreSQL) but its
per-execution machinery costs 30-60 us a statement on this machine, more than the statement
itself; the hot paths (write a version, read the current one) run a handful of fixed
statements per request. These run inside the same transaction as the SQLAlchemy connection
they are given, so they mix freely with ordinary Core statements.
"""

from typing import Any, Callable, NamedTuple, Sequence

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter


class Compiled(NamedTuple):
    sql: str
    order: Sequence[str] | None  # bind names in order, for positional paramstyles (SQLite's qmark)
    constants: dict[str, Any]  # the statement's own literals (a resource type, a parameter name)


class Prepared:
    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None):
        self.statement = statement
        self.columns = columns  # for an INSERT: the columns it sets (the rest take their defaults)
        self._by_dialect: dict[str, Compiled] = {}

    def execute(self, conn: Connection, params: dict[str, Any]):
        sql, order, constants = self.compiled_for(conn.dialect)
        if constants:
            params = {**constants, **params}
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(sql, [params[name] for name in order] if order is not None else params)
        return cursor

    def first(self, conn: Connection, params: dict[str, Any]) -> tuple | None:
        cursor = self.execute(conn, params)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def all(self, conn: Connection, params: dict[str, Any]) -> list[tuple]:
        cursor = self.execute(conn, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def rowcount(self, conn: Connection, params: dict[str, Any]) -> int:
        cursor = self.execute(conn, params)
        count = cursor.rowcount
        cursor.close()
        return count

    def compiled_for(self, dialect: Dialect) -> Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
            if "POSTCOMPILE" in compiled.string:  # an expanding IN needs SQLAlchemy at every execution
                raise AssertionError(f"a prepared statement left to expand at execution: {compiled.string}")
            # binds SQLAlchemy made of the statement's literals are unique (anonymous); the named ones are the caller's
            literals = {name for name, bind in compiled.binds.items() if bind.unique}
            constants = {k: v for k, v in compiled.construct_params(_check=False).items() if k in literals}
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._by_dialect[dialect.name] = Compiled(compiled.string, order, constants)
        return found


class PreparedRows:
    """An INSERT of many rows as one statement per `chunk` rows, compiled once per dialect and
    row count: one call into the driver (on SQLite, one release of the GIL around all the B-tree
    work) where executemany makes one per row."""

    def __init__(self, table: Table, columns: Sequence[str], chunk: int = 64):
        self.table = table
        self.columns = list(columns)
        self.chunk = chunk
        self._by_shape: dict[tuple[str, int], tuple[str, list[str] | None]] = {}

    def insert(self, conn: Connection, rows: Sequence[tuple]) -> None:
        """`rows`: tuples of values in `columns` order."""
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            for start in range(0, len(rows), self.chunk):
                part = rows[start : start + self.chunk]
                sql, names = self._compiled(conn, len(part))
                values = [value for row in part for value in row]
                cursor.execute(sql, values if names is None else dict(zip(names, values)))
        finally:
            cursor.close()

    def _compiled(self, conn: Connection, count: int) -> tuple[str, list[str] | None]:
        found = self._by_shape.get((conn.dialect.name, count))
        if found is None:
            width = len(self.columns)
            # bind names p0, p1, ... in row-major order, so the values can be passed flat
            rows = [{c: bindparam(f"p{r * width + i}") for i, c in enumerate(self.columns)} for r in range(count)]
            compiled = insert(self.table).values(rows).compile(dialect=conn.dialect)
            names = [f"p{n}" for n in range(count * width)]
            if compiled.positional:
                if list(compiled.positiontup) != names:
                    raise AssertionError("a multi-row INSERT binds its values out of row order")
                names = None
            found = self._by_shape[(conn.dialect.name, count)] = (compiled.string, names)
        return found


class PreparedPerCount:
    """A statement whose shape depends on a count (an IN list of that many values, a UNION of that
    many parts), compiled once per count: a Prepared cannot expand anything at execution."""

    def __init__(self, make: Callable[[int], ClauseElement]):
        self._make = make
        self._by_count: dict[int, Prepared] = {}

    def of(self, count: int) -> Prepared:
        found = self._by_count.get(count)
        if found is None:
            found = self._by_count[count] = Prepared(self._make(count))
        return found


class PreparedIn:
    """A statement with an IN list; `make` builds it from that many bind parameters (in0, in1, ...)."""

    def __init__(self, make: Callable[[list[BindParameter]], ClauseElement]):
        self._statements = PreparedPerCount(lambda count: make([bindparam(f"in{i}") for i in range(count)]))

    def all(self, conn: Connection, values: Sequence[Any], params: dict[str, Any] | None = None) -> list[tuple]:
        return self._statements.of(len(values)).all(conn, _with_values(values, params))

    def execute(self, conn: Connection, values: Sequence[Any], params: dict[str, Any] | None = None):
        return self._statements.of(len(values)).execute(conn, _with_values(values, params))


def _with_values(values: Sequence[Any], params: dict[str, Any] | None) -> dict[str, Any]:
    return {**(params or {}), **{f"in{i}": v for i, v in enumerate(values)}}
