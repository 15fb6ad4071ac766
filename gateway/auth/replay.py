"""Client assertions already used (RFC 7523 3: a `jti` is accepted once).

The records are rows in the database, not a process's memory, so that an assertion replayed
to another gateway process behind the load balancer is refused too (DESIGN section 10). The
(client, jti) primary key makes the database the judge when two processes see it at once.
Records are purged once their assertion has expired, since an expired assertion is refused
anyway.
"""

import time

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.store.database import Database
from gateway.store.schema import used_assertions

PURGE_EVERY_SECONDS = 60.0


class UsedAssertions:
    def __init__(self, db: Database):
        self.db = db
        self._next_purge = 0.0

    def first_use(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Record the assertion; False if this client already used this jti."""
        now = time.time()
        purge = now >= self._next_purge
        if purge:
            self._next_purge = now + PURGE_EVERY_SECONDS

        def job(conn) -> None:
            if purge:
                conn.execute(delete(used_assertions).where(used_assertions.c.expires_at < int(now * 1_000_000)))
            conn.execute(insert(used_assertions).values(client_id=client_id, jti=jti, expires_at=int(expires_at * 1_000_000)))

        try:
            self.db.run_write(job)
        except IntegrityError:
            return False
        return True
