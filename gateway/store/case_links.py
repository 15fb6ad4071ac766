"""Which case each stored resource belongs to, and which agencies are on each case's team.

A case is an EpisodeOfCare; its team is the participants (Organizations) of the CareTeams it
names. Every write keeps these links in its own transaction (`relink`), so a read or a search
by an agency's system is filtered by one indexed join (`visible_clause`, `VISIBILITY`) and never
has to open other resources:

- a resource that names an EpisodeOfCare anywhere (Task.focus, RiskAssessment.basis,
  CarePlan.supportingInfo, the case extension of a Flag or QuestionnaireResponse) belongs to
  that case; an EpisodeOfCare belongs to itself;
- the Patients and CareTeams an EpisodeOfCare names belong to it;
- a resource about one person that names no case itself (a Consent, a factor Observation)
  belongs to that person's cases, now and whenever a case names the person later.

A resource linked to no existing case (an Organization, a conformance resource, a Patient no
case names) is not case data: the SMART scopes alone decide who reads it. Deleting a resource
keeps its links, so its earlier versions stay as closed as the resource was.

The rows a resource's own content made are replaced when it is written again (`via` is that
resource); what an EpisodeOfCare says about its people, teams and their resources is `via` the
EpisodeOfCare. On PostgreSQL, writes that change the same case's or person's links take turns
(advisory locks, always in one order); SQLite has one writer.
"""

import re
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

import orjson
from sqlalchemy import Connection, and_, bindparam, delete, exists, insert, or_, select, text

from gateway.store.prepared import Prepared, PreparedRows
from gateway.store.schema import care_team_agencies as cta
from gateway.store.schema import case_agencies as ca
from gateway.store.schema import pending_backfills
from gateway.store.schema import person_resources as pr
from gateway.store.schema import resource_cases as rc
from gateway.store.schema import resources as r

CASE = "EpisodeOfCare"
TEAM = "CareTeam"
PERSON = "Patient"
# Never case data: the agency registry, conformance resources, and the disclosure ledger (read
# with the `audit` scope, whatever case an entry is about).
NEVER_CASE_DATA = frozenset(
    {"AuditEvent", "Organization", "StructureDefinition", "CodeSystem", "ValueSet", "Questionnaire", "SubscriptionTopic"}
)
# The element that says whom a resource is about, for resources that can be about one person.
PERSON_ELEMENT = {
    "Consent": "patient",
    "Observation": "subject",
    "RiskAssessment": "subject",
    "Flag": "subject",
    "Task": "for",
    "CarePlan": "subject",
    "QuestionnaireResponse": "subject",
}
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_BACKFILL = "case-links"


@dataclass(frozen=True)
class Links:
    """What one resource's content says about case membership."""

    cases: tuple[str, ...] = ()  # cases it names (an EpisodeOfCare: itself too)
    person: str | None = None  # the Patient it is about, when it names no case
    people: tuple[str, ...] = ()  # an EpisodeOfCare: the Patients it names
    teams: tuple[str, ...] = ()  # an EpisodeOfCare: the CareTeams it names
    agencies: tuple[str, ...] = ()  # a CareTeam: the Organizations among its participants


def links_of(resource_type: str, resource_id: str, resource: dict) -> Links:
    if resource_type in NEVER_CASE_DATA:
        return Links()
    targets = _targets(_references(resource, []))
    cases = tuple(dict.fromkeys(([resource_id] if resource_type == CASE else []) + targets.get(CASE, [])))
    if resource_type == CASE:
        return Links(cases, people=tuple(dict.fromkeys(targets.get(PERSON, []))), teams=tuple(dict.fromkeys(targets.get(TEAM, []))))
    if resource_type == TEAM:
        members = [p.get(k) for p in resource.get("participant", []) if isinstance(p, dict) for k in ("member", "onBehalfOf")]
        agencies = _targets([m["reference"] for m in members if isinstance(m, dict) and isinstance(m.get("reference"), str)])
        return Links(cases, agencies=tuple(dict.fromkeys(agencies.get("Organization", []))))
    person = None
    element = PERSON_ELEMENT.get(resource_type)
    if element and not cases:
        about = resource.get(element)
        about = about[0] if isinstance(about, list) and about else about
        if isinstance(about, dict) and isinstance(about.get("reference"), str):
            person = next(iter(_targets([about["reference"]]).get(PERSON, [])), None)
    return Links(cases, person)


def _references(node: Any, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            found.append(ref)
        for value in node.values():
            if isinstance(value, (dict, list)):
                _references(value, found)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _references(value, found)
    return found


def _targets(references: Iterable[str]) -> dict[str, list[str]]:
    """Type -> ids of literal references (`Type/id`, absolute, or with `/_history/n`)."""
    found: dict[str, list[str]] = {}
    for ref in references:
        parts = ref.split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2][:1].isupper() and _FHIR_ID.match(parts[-1]):
            found.setdefault(parts[-2], []).append(parts[-1])
    return found


# -- keeping the links (in the transaction of each write) ---------------------------------------


def relink(
    conn: Connection, resource_type: str, resource_id: str, resource: dict, fresh: bool, links: Links | None = None,
    previous: dict | None = None,
) -> None:
    """Replace the links `resource`'s content makes. `fresh`: its first version (no links to replace:
    they are only ever made by writing a version, and versions are never purged). `previous`: the
    content of the version it replaces, when the caller has it: a resource other than a case that
    names the same cases and person as before keeps its links as they are."""
    if resource_type in NEVER_CASE_DATA:
        return
    links = links or links_of(resource_type, resource_id, resource)
    if previous is not None and resource_type != CASE and links == links_of(resource_type, resource_id, previous):
        return
    me = {"t": resource_type, "i": resource_id}
    rows = [(resource_type, resource_id, case, resource_type, resource_id) for case in links.cases]
    if resource_type == CASE:
        old_people = [] if fresh else [row[0] for row in _PEOPLE_OF.execute(conn, {**me, "p": PERSON}).fetchall()]
        _lock(conn, [f"case:{resource_id}"] + [f"person:{p}" for p in {*old_people, *links.people}])
        rows += _case_structure(conn, resource_id, links)
    elif resource_type in PERSON_ELEMENT:
        if not fresh:
            _DELETE_INHERITED.execute(conn, {**me, "c": CASE}).close()
            _DELETE_PERSON.execute(conn, me).close()
        if links.person is not None:
            _lock(conn, [f"person:{links.person}"])
            _INSERT_PERSON.execute(conn, {"resource_type": resource_type, "resource_id": resource_id, "patient_id": links.person}).close()
            cases = _CASES_NAMING.execute(conn, {"t": PERSON, "i": links.person, "c": CASE}).fetchall()
            rows += [(resource_type, resource_id, case, CASE, case) for (case,) in cases]
    if not fresh:
        _DELETE_OWN.execute(conn, me).close()
    if rows:
        _INSERT_LINKS.insert(conn, list(dict.fromkeys(rows)))
    if resource_type == TEAM:
        _refresh_team(conn, resource_id, links.agencies, fresh)
    elif resource_type == CASE:
        _refresh_case_agencies(conn, resource_id)


def _case_structure(conn: Connection, case_id: str, links: Links) -> list[tuple]:
    """The people and teams an EpisodeOfCare names, and the resources about those people."""
    rows = [(PERSON, p, case_id, CASE, case_id) for p in links.people]
    rows += [(TEAM, t, case_id, CASE, case_id) for t in links.teams]
    if links.people:
        about = conn.execute(select(pr.c.resource_type, pr.c.resource_id).where(pr.c.patient_id.in_(links.people))).all()
        rows += [(t, i, case_id, CASE, case_id) for t, i in about]
    return rows


def _refresh_team(conn: Connection, team_id: str, agencies: tuple[str, ...], fresh: bool) -> None:
    if not fresh:
        _DELETE_TEAM_AGENCIES.execute(conn, {"team": team_id}).close()
    if agencies:
        _INSERT_TEAM_AGENCIES.insert(conn, [(team_id, a) for a in agencies])
    if fresh:
        return
    cases = sorted(c for (c,) in _CASES_NAMING.execute(conn, {"t": TEAM, "i": team_id, "c": CASE}).fetchall())
    _lock(conn, [f"case:{c}" for c in cases])
    for case in cases:
        _refresh_case_agencies(conn, case)


def _refresh_case_agencies(conn: Connection, case_id: str) -> None:
    _DELETE_CASE_AGENCIES.execute(conn, {"case": case_id}).close()
    _INSERT_CASE_AGENCIES.execute(conn, {"case": case_id, "team": TEAM, "c": CASE}).close()


def _lock(conn: Connection, keys: list[str]) -> None:
    """Take turns with other processes changing the same cases' or people's links (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({zlib.crc32(f"case-links:{k}".encode()) for k in keys}):  # one order everywhere: no deadlock
        conn.execute(text("SELECT pg_advisory_xact_lock(1, :k)"), {"k": key - 2**31})


_INSERT_LINKS = PreparedRows(rc, ["resource_type", "resource_id", "case_id", "via_type", "via_id"])
_DELETE_OWN = Prepared(delete(rc).where(rc.c.via_type == bindparam("t"), rc.c.via_id == bindparam("i")))
_DELETE_INHERITED = Prepared(
    delete(rc).where(rc.c.resource_type == bindparam("t"), rc.c.resource_id == bindparam("i"), rc.c.via_type == bindparam("c"))
)
_DELETE_PERSON = Prepared(delete(pr).where(pr.c.resource_type == bindparam("t"), pr.c.resource_id == bindparam("i")))
_INSERT_PERSON = Prepared(insert(pr), ["resource_type", "resource_id", "patient_id"])
_PEOPLE_OF = Prepared(
    select(rc.c.resource_id).where(rc.c.via_type == bindparam("t"), rc.c.via_id == bindparam("i"), rc.c.resource_type == bindparam("p"))
)
_DELETE_TEAM_AGENCIES = Prepared(delete(cta).where(cta.c.care_team_id == bindparam("team")))
_INSERT_TEAM_AGENCIES = PreparedRows(cta, ["care_team_id", "agency_id"])
_DELETE_CASE_AGENCIES = Prepared(delete(ca).where(ca.c.case_id == bindparam("case")))
# A case's agencies: those on the CareTeams its EpisodeOfCare names.
_INSERT_CASE_AGENCIES = Prepared(
    insert(ca).from_select(
        ["case_id", "agency_id"],
        select(rc.c.case_id, cta.c.agency_id)
        .distinct()
        .join(cta, cta.c.care_team_id == rc.c.resource_id)
        .where(
            rc.c.resource_type == bindparam("team"), rc.c.case_id == bindparam("case"), rc.c.via_type == bindparam("c"),
            rc.c.via_id == bindparam("case"),
        ),
    )
)
# The cases whose EpisodeOfCare names this resource (a person or a team).
_CASES_NAMING = Prepared(
    select(rc.c.case_id).where(
        rc.c.resource_type == bindparam("t"), rc.c.resource_id == bindparam("i"), rc.c.via_type == bindparam("c"),
        rc.c.via_id == rc.c.case_id,
    )
)


# -- who may see what -------------------------------------------------------------------------


def _restricted(type_value, id_value, case_type):
    """The resource belongs to at least one existing case."""
    link, case_row = rc.alias("link"), r.alias("case_row")
    return exists(
        select(1)
        .select_from(link.join(case_row, and_(case_row.c.resource_type == case_type, case_row.c.resource_id == link.c.case_id)))
        .where(link.c.resource_type == type_value, link.c.resource_id == id_value)
    )


def _member(type_value, id_value, agency_value):
    """The agency is on the team of one of the resource's cases."""
    link = rc.alias("member_link")
    return exists(
        select(1)
        .select_from(link.join(ca, ca.c.case_id == link.c.case_id))
        .where(link.c.resource_type == type_value, link.c.resource_id == id_value, ca.c.agency_id == agency_value)
    )


def visible_clause(type_column, id_column, agency_id: str):
    """A WHERE clause on a row of `resources` or `resource_versions`: the agency may see it."""
    return or_(~_restricted(type_column, id_column, CASE), _member(type_column, id_column, agency_id))


_t, _i, _a = bindparam("t"), bindparam("i"), bindparam("a")
# (restricted, member) for one resource: the whole access check of a read
VISIBILITY = Prepared(select(_restricted(_t, _i, bindparam("c")), _member(_t, _i, _a)))
_SHARED_CASES = Prepared(
    select(rc.c.case_id)
    .distinct()
    .join(ca, ca.c.case_id == rc.c.case_id)
    .where(rc.c.resource_type == _t, rc.c.resource_id == _i, ca.c.agency_id == _a)
    .order_by(rc.c.case_id)
)
_c = bindparam("case")
# (the case exists, the agency is on its team)
CASE_STANDING = Prepared(
    select(
        exists(select(1).select_from(r).where(r.c.resource_type == bindparam("c"), r.c.resource_id == _c)),
        exists(select(1).select_from(ca).where(ca.c.case_id == _c, ca.c.agency_id == _a)),
    )
)


def may_see(conn: Connection, resource_type: str, resource_id: str, agency_id: str) -> bool:
    if resource_type in NEVER_CASE_DATA:
        return True
    restricted, member = VISIBILITY.first(conn, {"t": resource_type, "i": resource_id, "c": CASE, "a": agency_id})
    return bool(member) or not restricted


def shared_cases(conn: Connection, resource_type: str, resource_ids: list[str], agency_id: str) -> dict[str, list[str]]:
    """Resource id -> the cases it belongs to whose team the agency is on, in id order (ids on none are left out).

    One statement for a whole search page; a single read takes the compiled one."""
    if len(resource_ids) == 1:
        cursor = _SHARED_CASES.execute(conn, {"t": resource_type, "i": resource_ids[0], "a": agency_id})
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return {resource_ids[0]: [case for (case,) in rows]} if rows else {}
    found: dict[str, list[str]] = {}
    query = (
        select(rc.c.resource_id, rc.c.case_id).distinct().join(ca, ca.c.case_id == rc.c.case_id)
        .where(rc.c.resource_type == resource_type, rc.c.resource_id.in_(resource_ids), ca.c.agency_id == agency_id)
        .order_by(rc.c.resource_id, rc.c.case_id)
    )
    for resource_id, case in conn.execute(query):
        found.setdefault(resource_id, []).append(case)
    return found


def case_standing(conn: Connection, case_id: str, agency_id: str) -> tuple[bool, bool]:
    """(the case exists, the agency is on its team)."""
    found, member = CASE_STANDING.first(conn, {"c": CASE, "case": case_id, "a": agency_id})
    return bool(found), bool(member)


# -- a database written before these links existed ----------------------------------------------


def run_pending_backfill(db, store) -> int:
    """Derive the links of every stored resource if a migration asked for it; return how many were read.

    One transaction, so processes starting together take turns and only the first does the work.
    Resources first, EpisodeOfCares last: a case links the people's resources already recorded.
    """

    def job(conn: Connection) -> int:
        db.advisory_lock(conn, "case-links-backfill")
        if conn.execute(select(pending_backfills.c.name).where(pending_backfills.c.name == _BACKFILL)).first() is None:
            return 0
        done = 0
        stored = select(r.c.resource_type, r.c.resource_id).where(r.c.deleted.is_(False), r.c.resource_type.not_in(NEVER_CASE_DATA))
        for chosen in (stored.where(r.c.resource_type != CASE), stored.where(r.c.resource_type == CASE)):
            for resource_type, resource_id in conn.execute(chosen.order_by(r.c.resource_type, r.c.resource_id)).all():
                found = store.current(conn, resource_type, resource_id)
                relink(conn, resource_type, resource_id, orjson.loads(found.body), fresh=False)
                done += 1
        conn.execute(delete(pending_backfills).where(pending_backfills.c.name == _BACKFILL))
        return done

    return db.run_write(job)
