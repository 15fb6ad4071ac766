"""Change marks: a fresh token for a case's parts and for each person, set by every write that
changes what is known of them, so a reader can keep what it derived from them across
transactions and check in one statement that it still holds.

The release path keeps each case's `ReleaseContext` (gateway.cases.release) this way: it is read
from the EpisodeOfCare, its CareTeam, its Patients, their Consents and their RiskAssessments,
about twenty statements a message on a busy case; checking their marks is one.

A subject is a reference: "EpisodeOfCare/<id>", "CareTeam/<id>" and "Patient/<id>" for a write
of that resource itself, and "Patient/<id>" for a write of a Consent or RiskAssessment about the
person, as the search index has it (so a mark moves exactly when a search by that person could
find something else). A rewrite or delete marks the person its previous version was about too.

A mark is a new id, never a counter: a transaction that set one and rolled back leaves a token
that nobody can set again, so nothing read inside it can ever be mistaken for committed state.
Readers read the marks *before* the resources they cover (on PostgreSQL each statement sees the
latest commits): a write between the two leaves a mark that no longer matches, never the reverse.
"""

from typing import Sequence

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.fhir.ids import new_id
from gateway.fhir.indexing import IndexEntry
from gateway.store.prepared import Prepared, PreparedIn
from gateway.store.schema import change_marks as cm
from gateway.store.schema import search_index as si

# What a write of each watched type marks: the resource itself (None), or the people the search
# parameter names.
WATCHED: dict[str, str | None] = {
    "EpisodeOfCare": None,
    "CareTeam": None,
    "Patient": None,
    "Consent": "patient",
    "RiskAssessment": "subject",
}


def subject(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}/{resource_id}"


def mark_write(conn: Connection, resource_type: str, resource_id: str, index: Sequence[IndexEntry], existed: bool) -> None:
    """In the transaction of a write of a watched type (before its old index rows are replaced)."""
    param = WATCHED[resource_type]
    if param is None:
        subjects = {subject(resource_type, resource_id)}
    else:
        subjects = {e.value for e in index if e.param == param and e.value}
        if existed:
            subjects.update(v for (v,) in _INDEXED.all(conn, {"t": resource_type, "i": resource_id, "p": param}) if v)
    if subjects:
        statement = _SET_SQLITE if conn.dialect.name == "sqlite" else _SET_POSTGRESQL
        mark = new_id()
        for s in sorted(subjects):  # one order, so concurrent writers on PostgreSQL never deadlock here
            statement.execute(conn, {"subject": s, "mark": mark}).close()


def marks(conn: Connection, subjects: Sequence[str]) -> tuple[str | None, ...]:
    """The current mark of each subject, in order (None: never marked since marks began)."""
    found = dict(_READ.all(conn, subjects))
    return tuple(found.get(s) for s in subjects)


def _set(insert) -> Prepared:
    statement = insert(cm).values(subject=bindparam("subject"), mark=bindparam("mark"))
    return Prepared(statement.on_conflict_do_update(index_elements=[cm.c.subject], set_={"mark": statement.excluded.mark}))


_SET_SQLITE = _set(sqlite.insert)
_SET_POSTGRESQL = _set(postgresql.insert)
_INDEXED = Prepared(
    select(si.c.value).where(si.c.resource_type == bindparam("t"), si.c.resource_id == bindparam("i"), si.c.param == bindparam("p"))
)
_READ = PreparedIn(lambda binds: select(cm.c.subject, cm.c.mark).where(cm.c.subject.in_(binds)))
