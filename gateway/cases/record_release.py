"""What a FHIR read, vread, search or history releases to an agency's system.

The agency store has already left out what is not on the agency's cases. What remains may still
be another agency's information about a person, and nothing leaves the gateway unless the consent
engine permits it (DESIGN 4), so every such record is decided before it is served:

- records about a person (a Patient, and the resources `case_links.PERSON_ELEMENT` names whom
  they are about) that belong to a case the agency works, and that another agency holds (the
  agency whose system wrote the version; the gateway's own records are held by the case's lead
  agency). An agency's own records, the case's coordination records (EpisodeOfCare, CareTeam)
  and what belongs to no case are served as the scopes and the team allow;
- the category is what the holder labelled the record with (`meta.security`, the
  information-category CodeSystem), else the type's usual category (`DEFAULT_CATEGORY`); every
  labelled category must be released. Excluded-information labels go to the engine as they are;
- a Patient's address, telecom and contacts are where the person lives or can be reached: they
  are decided as location (the victim survivor's location, or whereabouts) and cut out when not
  released;
- an RFI is its requester's and its target's exchange: each answer was decided for the requester
  when it was given, so other team members see the request without its answers;
- an agency that has not acknowledged confidentiality, or observes the case, receives nothing
  about people (MARAM/MACM step 4), as in RFI brokering.

A record that is not released is left out (a read answers 403 `suppressed`; a search says so in
an OperationOutcome entry); a redacted one carries the v3 REDACTED label. Every decision made
for one request is kept in `decided` and written by `record` as one AuditEvent, before the
response leaves (FhirService), so nothing is released unrecorded.
"""

import dataclasses
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Callable

import orjson
from sqlalchemy import Connection

from gateway.audit.events import DecidedItem, record_release_event
from gateway.audit.ledger import DisclosureLedger
from gateway.cases.release import CaseReader, ReleaseContext, party_of, withheld_reason
from gateway.consent.engine import ConsentEngine
from gateway.consent.model import Decision, DecisionRequest, Outcome, Party
from gateway.domain.case import MultiAgencyCase
from gateway.domain.summary import WithheldPart, Withholding
from gateway.domain.vocabulary import (
    AgencyType,
    ExcludedInformation,
    InformationCategory,
    RfiPurpose,
    SubjectRole,
    TaskType,
)
from gateway.errors import NotFound
from gateway.fhir.ids import new_id
from gateway.fhir.withheld import Screened, WithheldRecord
from gateway.mappings.common import read_code
from gateway.store import case_links
from gateway.store.database import Database
from gateway.store.resources import StoredVersion

PURPOSE = RfiPurpose.RISK_MANAGEMENT  # case work on a case the agency is on the team of
DEFAULT_CATEGORY = {
    "Patient": InformationCategory.CASE_PARTICIPATION,
    "Consent": InformationCategory.CASE_PARTICIPATION,
    "Task": InformationCategory.CASE_PARTICIPATION,
    "CarePlan": InformationCategory.RISK_ASSESSMENT,
    "RiskAssessment": InformationCategory.RISK_ASSESSMENT,
    "Observation": InformationCategory.RISK_ASSESSMENT,
    "Flag": InformationCategory.RISK_ASSESSMENT,
    "QuestionnaireResponse": InformationCategory.RISK_ASSESSMENT,
}
LOCATION_ELEMENTS = ("address", "telecom", "contact")  # of a Patient (and its narrative, when they are cut)
FREE_TEXT = ("text", "note")  # what permit-with-redaction always takes out: prose cannot be cut apart safely
VICTIM_SURVIVORS = (SubjectRole.ADULT_VICTIM_SURVIVOR, SubjectRole.CHILD_VICTIM_SURVIVOR)
REDACTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED", "display": "redacted"}
_GATEWAY_RULES = "gateway"  # the policy label of the gateway's own refusals, which come before the engine


class RecordRelease:
    """The gateway's release check for stored records; `for_agency` makes one request's."""

    def __init__(self, reader: CaseReader, engine: ConsentEngine, ledger: DisclosureLedger, clock: Callable[[], datetime]):
        self.reader = reader
        self.engine = engine
        self.ledger = ledger
        self.clock = clock

    def for_agency(self, agency_id: str) -> "AgencyRelease":
        return AgencyRelease(self, agency_id)


class AgencyRelease:
    """What one request of `agency_id` is released; holds that request's decisions until `record`."""

    def __init__(self, release: RecordRelease, agency_id: str):
        self.release = release
        self.agency_id = agency_id
        self.decided: list[DecidedItem] = []
        self._memo: dict = {}  # case contexts and agencies read in this request

    def screen(self, conn: Connection, versions: list[StoredVersion]) -> Screened:
        screened = Screened([], [])
        cases = self._shared_cases(conn, versions)
        for version in versions:
            shared = cases.get((version.resource_type, version.resource_id))
            outcome = self._screen(conn, version, shared) if shared else version
            (screened.withheld if isinstance(outcome, WithheldRecord) else screened.released).append(outcome)
        return screened

    def withholding(self, conn: Connection, case: MultiAgencyCase) -> Withholding:
        """What of `case`'s summary this agency may not be shown: the Level 3 forms its risk history
        comes from and its open Tasks, each screened as a read of that record would be."""
        forms = {f"{case.id}-{key}": key for key, _ in case.risk_by_form()}
        tasks = [a.id for a in case.actions if a.is_open] + [r.id for r in case.rfis if r.is_outstanding]
        store = self.release.reader.store
        versions = [
            found for kind, ids in (("QuestionnaireResponse", forms), ("Task", tasks))
            for resource_id in ids if (found := store.current(conn, kind, resource_id)) is not None
        ]
        screened = self.screen(conn, versions)
        stored = {v.resource_id: v.body for v in versions if v.resource_type == "QuestionnaireResponse"}
        withheld = screened.withheld
        return Withholding(
            forms=frozenset(forms[w.resource_id] for w in withheld if w.resource_id in forms),
            # an RFI's answers are cut for non-parties too, but the summary never shows answers
            redacted_forms=frozenset(forms[v.resource_id] for v in screened.released if v.body != stored.get(v.resource_id, v.body)),
            tasks=frozenset(w.resource_id for w in withheld if w.resource_type == "Task"),
            parts=tuple(WithheldPart(f"{w.resource_type}/{w.resource_id}", w.reason.value, w.explanation) for w in withheld),
        )

    @asynccontextmanager
    async def recorded(self, db: Database, interaction: str):
        """Record what the body decided (one AuditEvent) before its response leaves, released or refused.

        If the record cannot be written, the request fails: nothing is released unrecorded."""
        try:
            yield
        finally:
            if self.decided:
                await db.write(lambda conn: self.record(conn, interaction))

    def record(self, conn: Connection, interaction: str) -> None:
        """Write what this request decided (one AuditEvent), in the caller's transaction."""
        if not self.decided:
            return
        event = record_release_event(new_id(), interaction, self.agency_id, self.decided, self.release.clock())
        self.release.ledger.record(conn, event)
        self.decided = []

    # -- one record ---------------------------------------------------------------------------

    def _shared_cases(self, conn: Connection, versions: list[StoredVersion]) -> dict[tuple[str, str], list[str]]:
        """The cases of this agency's each decidable record is on; what is on none is not case data."""
        by_type: dict[str, list[str]] = {}
        for v in versions:
            if v.body is not None and v.resource_type in DEFAULT_CATEGORY:
                by_type.setdefault(v.resource_type, []).append(v.resource_id)
        return {
            (kind, resource_id): cases
            for kind, ids in by_type.items()
            for resource_id, cases in case_links.shared_cases(conn, kind, list(dict.fromkeys(ids)), self.agency_id).items()
        }

    def _screen(self, conn: Connection, version: StoredVersion, cases: list[str]) -> StoredVersion | WithheldRecord:
        resource = orjson.loads(version.body)
        subject = _subject(version.resource_type, version.resource_id, resource)
        if subject is None:
            return version  # about no one: the scopes and the team decided
        context = self.release.reader.context(conn, cases[0], self._memo)
        rfi = _is_rfi(resource)
        parties = (_reference_id(resource, "requester"), _reference_id(resource, "owner")) if rfi else ()
        holder = (parties[0] if rfi else version.holder) or context.team.lead_agency()
        if self.agency_id in parties or holder == self.agency_id:
            return version  # its own record (or an RFI it is party to: decided when it was answered)
        decided = self._decide_record(conn, version, resource, context, holder, subject)
        if isinstance(decided, WithheldRecord):
            return decided
        redactions = list(decided)
        if rfi and resource.pop("output", None) is not None:
            redactions.append("output")
        if version.resource_type == "Patient":
            redactions += self._location(conn, version, resource, context, holder, subject)
        if not redactions:
            return version
        resource.setdefault("meta", {}).setdefault("security", []).append(REDACTED)
        return dataclasses.replace(version, body=orjson.dumps(resource))

    def _decide_record(
        self, conn: Connection, version: StoredVersion, resource: dict, context: ReleaseContext, holder: str | None, subject: str
    ) -> list[str] | WithheldRecord:
        """Decide each of the record's categories; the elements taken out, or why it is withheld."""
        excluded = frozenset(_labels(resource, ExcludedInformation))
        categories = [InformationCategory.CASE_PARTICIPATION] if _is_rfi(resource) else (
            _labels(resource, InformationCategory) or [DEFAULT_CATEGORY[version.resource_type]]
        )
        removed: list[str] = []
        for category in categories:
            decision = self._decide(conn, version, context, holder, subject, category, excluded)
            if not decision.releases:
                return WithheldRecord(
                    version.resource_type, version.resource_id, version.version_id, withheld_reason(decision), decision.explanation
                )
            if decision.decision is Outcome.PERMIT_WITH_REDACTION:
                removed += _cut(resource, FREE_TEXT + tuple(decision.redactions))
        return removed

    def _location(
        self, conn: Connection, version: StoredVersion, resource: dict, context: ReleaseContext, holder: str | None, subject: str
    ) -> list[str]:
        present = [name for name in LOCATION_ELEMENTS if name in resource]
        if not present:
            return []
        role = context.roles.get(subject, SubjectRole.THIRD_PARTY)
        category = InformationCategory.VICTIM_SURVIVOR_LOCATION if role in VICTIM_SURVIVORS else InformationCategory.WHEREABOUTS
        decision = self._decide(conn, version, context, holder, subject, category, frozenset(_labels(resource, ExcludedInformation)))
        # the narrative is cut too: a generated one repeats the address
        return [] if decision.releases else _cut(resource, present + ["text"])

    def _decide(
        self, conn: Connection, version: StoredVersion, context: ReleaseContext, holder_id: str | None, subject: str,
        category: InformationCategory, excluded: frozenset,
    ) -> Decision:
        at = self.release.clock()
        member = context.team.member(self.agency_id)
        recipient = self._agency(conn, self.agency_id)
        holder = self._agency(conn, holder_id) if holder_id else Party(AgencyType.OTHER)
        request = DecisionRequest(
            jurisdiction=context.jurisdiction, purpose=PURPOSE, requester=recipient, releaser=holder,
            subject_role=context.roles.get(subject, SubjectRole.THIRD_PARTY), category=category, excluded=excluded,
            consent=context.consent_on_file(subject), serious_threat=context.serious_threat,
            child_at_risk=context.child_at_risk, at=at,
        )
        if member is None or not member.may_receive_information:
            decision = _refusal("confidentiality-not-acknowledged", (
                f"Agency {self.agency_id} observes the case or has not acknowledged confidentiality; "
                "information about people is shared only with team members who have"
            ))
        elif holder_id is None:
            decision = _refusal("holder-unknown", (
                "No agency holds this record: the gateway wrote it and the case has no lead agency. "
                "It is released once the team names a lead agency"
            ))
        elif recipient.id is None or holder.id is None:
            decision = _refusal("agency-not-registered", "The recipient or the holder of the record is not a registered agency")
        else:
            decision = self.release.engine.decide(request)
        entity = {"reference": f"{version.resource_type}/{version.resource_id}/_history/{version.version_id}"}
        self.decided.append(DecidedItem(entity, holder_id, subject, request, decision))
        return decision

    def _agency(self, conn: Connection, agency_id: str) -> Party:
        """The agency as the engine sees it; an unregistered one is nobody (and is refused)."""
        try:
            return party_of(self.release.reader.agency(conn, agency_id, self._memo))
        except NotFound:
            return Party(AgencyType.OTHER)


def _subject(resource_type: str, resource_id: str, resource: dict) -> str | None:
    if resource_type == case_links.PERSON:
        return resource_id
    about = resource.get(case_links.PERSON_ELEMENT.get(resource_type, ""))
    about = about[0] if isinstance(about, list) and about else about
    reference = about.get("reference") if isinstance(about, dict) else None
    if isinstance(reference, str) and reference.startswith("Patient/"):
        return reference.split("/")[1]
    return None


def _is_rfi(resource: dict) -> bool:
    if resource.get("resourceType") != "Task":
        return False
    try:
        return read_code(resource.get("code"), TaskType) is TaskType.RFI
    except ValueError:  # another code of the same system: not an RFI
        return False


def _reference_id(resource: dict, element: str) -> str | None:
    reference = resource.get(element, {}).get("reference", "")
    return reference.split("/")[1] if reference.startswith("Organization/") else None


def _labels(resource: dict, vocabulary) -> list:
    system = vocabulary.system()
    found = []
    for label in resource.get("meta", {}).get("security", []):
        if label.get("system") == system:
            try:
                found.append(vocabulary(label.get("code")))
            except ValueError:  # a code this gateway does not know: decide on the rest, never on a guess
                continue
    return found


def _cut(resource: dict, names) -> list[str]:
    return [name for name in names if resource.pop(name, None) is not None]


def _refusal(rule: str, explanation: str) -> Decision:
    return Decision(Outcome.DENY, "Multi-agency case management: information is shared only as the team's rules allow", rule, (), (),
                    explanation, _GATEWAY_RULES, new_id())
