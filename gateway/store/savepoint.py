"""A savepoint in plain SQL, for one job (or one message) inside a shared transaction; and what
a transaction may remember of its own writes until a savepoint in it rolls back."""

from sqlalchemy import Connection

from gateway.store import deferred

_MEMO = "gateway.transaction-memo"


def transaction_memo(conn: Connection) -> dict:
    """A dict for what this transaction learned of its own writes (the audit chain's tip), so
    later statements in it need not read it again. Empty again in the next transaction, and after
    any savepoint rollback (which may have undone what it says)."""
    transaction = conn.get_transaction()
    held = conn.info.get(_MEMO)
    if held is None or held[0] is not transaction:
        held = conn.info[_MEMO] = (transaction, {})
    return held[1]


class Savepoint:
    """A savepoint in plain SQL on the transaction's DBAPI cursor. SQLAlchemy's begin_nested
    compiles a new SAVEPOINT statement each time (a fresh name) and its bookkeeping costs more than
    the savepoint itself (about 8% of the writer's time under inbound load); nothing relies on it."""

    def __init__(self, conn: Connection, name: str = "job"):
        self._name = name
        self._conn = conn
        self._appended = deferred.mark(conn)  # rows appended to insert at the job's end (gateway.store.deferred)
        self._cursor = conn.connection.dbapi_connection.cursor()
        self._cursor.execute(f"SAVEPOINT {name}")

    def release(self) -> None:
        self._cursor.execute(f"RELEASE SAVEPOINT {self._name}")
        self._cursor.close()

    def rollback(self, quietly: bool = False) -> None:
        """`quietly`: the whole transaction is failing anyway, and the connection may be gone."""
        self._conn.info.pop(_MEMO, None)
        deferred.truncate(self._conn, self._appended)
        try:
            self._cursor.execute(f"ROLLBACK TO SAVEPOINT {self._name}")
            self.release()
        except Exception:
            if not quietly:
                raise
