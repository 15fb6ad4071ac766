"""Every release of case information to an agency goes through here: the consent engine decides
each item, and each decision, release or refusal, is recorded in the disclosure ledger in the
caller's transaction (so nothing is released unrecorded, and nothing recorded is left unsent).

`ReleaseContext` is what the engine needs about one case, read from the case's FHIR resources
without rebuilding the whole aggregate (that is the hot path of RFI brokering): jurisdiction,
team, the roles of the people, the consent on file for each, and the risk findings.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timezone

import orjson
from sqlalchemy import Connection

from gateway.audit.events import disclosure_event
from gateway.audit.ledger import DisclosureLedger
from gateway.consent.engine import ConsentEngine
from gateway.consent.model import ConsentOnFile, Decision, DecisionRequest, Outcome, Party
from gateway.domain.agencies import Agency
from gateway.domain.case import CaseStatus
from gateway.domain.consent import ConsentRecord
from gateway.domain.team import Team
from gateway.domain.vocabulary import (
    ConsentStatus,
    ExcludedInformation,
    InformationCategory,
    Jurisdiction,
    RfiPurpose,
    RiskDeterminedBy,
    RiskLevel,
    SubjectRole,
    WithheldReason,
)
from gateway.errors import Conflict, NotFound
from gateway.fhir.ids import new_id
from gateway.fhir.search import parse_search
from gateway.mappings import care_team, consent, episode, organization, patient
from gateway.mappings.common import read_code
from gateway.store import change_marks
from gateway.store.resources import ResourceStore, StoredVersion, every_match

SERIOUS = (RiskLevel.IMMINENT, RiskLevel.HIGH)
KNOWN_CONTEXTS = 4096  # cases whose release context a process keeps (each a few kB)


@dataclass(frozen=True)
class ReleaseContext:
    case_id: str
    jurisdiction: Jurisdiction
    status: CaseStatus
    team: Team
    roles: dict[str, SubjectRole]
    consents: dict[str, ConsentRecord]  # the newest record per person
    serious_threat: bool
    child_at_risk: bool
    # each person's Patient resource as stored (a request carries it to the target); bytes, so
    # no reader can change what the next transaction is given
    people: dict[str, bytes]

    def person(self, person_id: str) -> dict | None:
        body = self.people.get(person_id)
        return orjson.loads(body) if body is not None else None

    def consent_on_file(self, person_id: str) -> ConsentOnFile:
        record = self.consents.get(person_id)
        if record is None:
            return ConsentOnFile(ConsentStatus.NOT_SOUGHT)
        at = datetime.combine(record.recorded_on, time.min, tzinfo=timezone.utc)
        return ConsentOnFile(record.status, record.recipients, at)


class _KnownContexts:
    """Release contexts read in earlier transactions, each with the subjects and marks it was read under."""

    def __init__(self, size: int):
        self._size = size
        self._entries: dict[str, tuple[tuple[str, ...], tuple[str | None, ...], ReleaseContext]] = {}
        self._lock = threading.Lock()

    def get(self, conn: Connection, case_id: str) -> ReleaseContext | None:
        entry = self._entries.get(case_id)
        if entry is None:
            return None
        subjects, marks, context = entry
        return context if change_marks.marks(conn, subjects) == marks else None

    def put(self, case_id: str, subjects: tuple[str, ...], marks: tuple[str | None, ...], context: ReleaseContext) -> None:
        with self._lock:
            self._entries.pop(case_id, None)
            self._entries[case_id] = (subjects, marks, context)
            while len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]  # the longest kept


class CaseReader:
    """Reads the parts of a case a release needs, straight from the FHIR store.

    Each case's ReleaseContext is kept between transactions, with the change marks of the
    resources it was read from (gateway.store.change_marks): checking those marks is one
    statement where reading the context again was about twenty, and any write that could change
    the context (in any process) changes a mark."""

    def __init__(self, store: ResourceStore, known: int = KNOWN_CONTEXTS):
        self.store = store
        self._known = _KnownContexts(known)

    def current(self, conn: Connection, resource_type: str, resource_id: str) -> StoredVersion | None:
        """The current version, None if there is none or it is a delete marker."""
        found = self.store.current(conn, resource_type, resource_id)
        return found if found is not None and not found.deleted else None

    def resource(self, conn: Connection, resource_type: str, resource_id: str) -> dict | None:
        found = self.current(conn, resource_type, resource_id)
        return orjson.loads(found.body) if found is not None else None

    def search(self, conn: Connection, resource_type: str, params: list[tuple[str, str]], count: int = 1000) -> list[dict]:
        query = parse_search(resource_type, params)
        query.count, query.with_total = count, False
        return [orjson.loads(v.body) for v in self.store.search(conn, query)[0]]

    def search_all(self, conn: Connection, resource_type: str, params: list[tuple[str, str]], page: int = 500) -> Iterator[dict]:
        """Every match, a page at a time, in id order: what the caller changes between pages
        (its lastUpdated) moves nothing, so none is skipped or seen twice."""
        query = parse_search(resource_type, params + [("_sort", "_id")])
        return (orjson.loads(v.body) for v in every_match(self.store, conn, query, page))

    def agency(self, conn: Connection, agency_id: str, memo: dict | None = None) -> Agency:
        key = ("Organization", agency_id)
        if memo is not None and key in memo:
            return memo[key]
        found = self.resource(conn, "Organization", agency_id)
        if found is None:
            raise NotFound(f"Agency {agency_id} is not registered (no Organization/{agency_id})")
        agency = organization.from_fhir(found)
        if memo is not None:
            memo[key] = agency
        return agency

    def context(self, conn: Connection, case_id: str, memo: dict | None = None) -> ReleaseContext:
        """`memo`: contexts already read in this transaction (a batch of messages touches few cases;
        nothing a message handler writes changes a context, so within one transaction it holds)."""
        key = ("EpisodeOfCare", case_id)
        if memo is not None and key in memo:
            return memo[key]
        context = self._known.get(conn, case_id) or self._read_context(conn, case_id)
        if memo is not None:
            memo[key] = context
        return context

    def _read_context(self, conn: Connection, case_id: str) -> ReleaseContext:
        # Each resource is read after its mark (see gateway.store.change_marks): the case's own
        # parts first, then, once the EpisodeOfCare has named them, its people.
        parts = (change_marks.subject("EpisodeOfCare", case_id), change_marks.subject("CareTeam", f"{case_id}-team"))
        part_marks = change_marks.marks(conn, parts)
        found = self.resource(conn, "EpisodeOfCare", case_id)
        if found is None:
            raise NotFound(f"Case {case_id} does not exist")
        record = episode.from_fhir(found)
        person_ids = dict.fromkeys([*record.people_ids, record.victim_survivor_id])
        people = tuple(change_marks.subject("Patient", pid) for pid in person_ids)
        people_marks = change_marks.marks(conn, people)
        found_people = {pid: self.current(conn, "Patient", pid) for pid in record.people_ids}
        bodies = {pid: v.body for pid, v in found_people.items() if v is not None}
        roles = {pid: patient.role_of(orjson.loads(bodies[pid]) if pid in bodies else {}) for pid in record.people_ids}
        newest: dict[str, ConsentRecord] = {}
        subjects = ",".join(f"Patient/{pid}" for pid in record.people_ids)
        for c in self.search(conn, "Consent", [("patient", subjects)]) if subjects else ():
            candidate = consent.from_fhir(c)
            if candidate.subject_id not in newest or candidate.recorded_on >= newest[candidate.subject_id].recorded_on:
                newest[candidate.subject_id] = candidate
        context = ReleaseContext(
            case_id=case_id,
            jurisdiction=record.jurisdiction,
            status=record.status,
            team=self.team(conn, case_id),
            roles=roles,
            consents=newest,
            serious_threat=self._current_risk(conn, record.victim_survivor_id) in SERIOUS,
            child_at_risk=SubjectRole.CHILD_VICTIM_SURVIVOR in roles.values(),
            people=bodies,
        )
        self._known.put(case_id, parts + people, part_marks + people_marks, context)
        return context

    def team(self, conn: Connection, case_id: str) -> Team:
        found = self.resource(conn, "CareTeam", f"{case_id}-team")
        if found is None:  # deleted: nobody can be said to be on the case, so nothing is released on it
            raise Conflict(f"Case {case_id} has no team (CareTeam/{case_id}-team is deleted); restore it to share on this case")
        return care_team.from_fhir(found)

    def _current_risk(self, conn: Connection, victim_id: str) -> RiskLevel | None:
        """The newest multi-agency determination, else the newest practitioner's (3A Part 3 comes later).

        One newest-first search of a single match per method: every assessment of the person,
        read and decrypted to keep one, took a sixth of an RFI's handling on a case with history."""
        for by in (RiskDeterminedBy.MULTI_AGENCY, RiskDeterminedBy.PRACTITIONER):
            params = [("subject", f"Patient/{victim_id}"), ("method", f"{by.system()}|{by.value}"), ("_sort", "-date")]
            newest = self.search(conn, "RiskAssessment", params, count=1)
            if newest:
                return read_code(newest[0]["prediction"][0]["qualitativeRisk"], RiskLevel)
        return None


@dataclass(frozen=True)
class Disclosure:
    """One item offered for release: about whom, what kind, and the holder's exclusion labels."""

    subject_id: str
    category: InformationCategory
    excluded: frozenset[ExcludedInformation] = frozenset()


class ReleaseCheck:
    def __init__(self, engine: ConsentEngine, ledger: DisclosureLedger):
        self.engine = engine
        self.ledger = ledger

    def decide(
        self, conn: Connection, context: ReleaseContext, purpose: RfiPurpose, recipient: Agency, holder: Agency,
        item: Disclosure, at: datetime, entity: dict | None = None,
    ) -> Decision:
        """Decide one item and record the decision (AuditEvent in the ledger) in this transaction."""
        request = DecisionRequest(
            jurisdiction=context.jurisdiction, purpose=purpose, requester=party_of(recipient), releaser=party_of(holder),
            subject_role=context.roles.get(item.subject_id, SubjectRole.THIRD_PARTY), category=item.category,
            excluded=item.excluded, consent=context.consent_on_file(item.subject_id), serious_threat=context.serious_threat,
            child_at_risk=context.child_at_risk, at=at,
        )
        decision = self.engine.decide(request)
        event = disclosure_event(new_id(), decision, request, recipient.id, holder.id, item.subject_id, at, entity)
        self.ledger.record(conn, event)
        return decision


def party_of(agency: Agency) -> Party:
    return Party(agency.type, agency.prescribed, agency.id)


def withheld_reason(decision: Decision) -> WithheldReason:
    if decision.rule.endswith("excluded-information"):
        return WithheldReason.EXCLUDED_INFORMATION
    if decision.rule == "victim-survivor-location-to-puv-service":
        return WithheldReason.SAFETY
    if decision.decision is Outcome.REFER:
        return WithheldReason.PROFESSIONAL_JUDGEMENT
    return WithheldReason.NOT_PERMITTED
