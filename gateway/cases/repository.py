"""A multi-agency case kept as its FHIR resources: rebuilt from them, written back in one transaction.

The FHIR record is the single source of truth (the shared view every agency reads); the
aggregate is rebuilt from the EpisodeOfCare, its Patients, CareTeam, form responses, Tasks and
Consents, changed by one command, and only the resources whose content changed are written.
"""

import orjson
from sqlalchemy import Connection

from gateway.domain.agencies import Agency
from gateway.domain.case import MultiAgencyCase
from gateway.fhir.indexing import index_entries
from gateway.cases.release import CaseReader
from gateway.errors import NotFound
from gateway.mappings import care_team, consent, episode, patient, rfi, safety_action
from gateway.mappings import questionnaire_response as forms
from gateway.mappings.case_resources import case_resources
from gateway.store.resources import ResourceStore
from gateway.domain.vocabulary import TaskType


class CaseRepository:
    def __init__(self, store: ResourceStore):
        self.store = store
        self.reader = CaseReader(store)  # one way to read a case's resources, shared with the release path

    # -- reading -----------------------------------------------------------------------------

    def _resource(self, conn: Connection, resource_type: str, resource_id: str) -> dict | None:
        return self.reader.resource(conn, resource_type, resource_id)

    def _search(self, conn: Connection, resource_type: str, params: list[tuple[str, str]]) -> list[dict]:
        return self.reader.search(conn, resource_type, params)

    def agency(self, conn: Connection, agency_id: str) -> Agency:
        return self.reader.agency(conn, agency_id)

    def load(self, conn: Connection, case_id: str) -> MultiAgencyCase:
        found = self._resource(conn, "EpisodeOfCare", case_id)
        if found is None:
            raise NotFound(f"Case {case_id} does not exist")
        record = episode.from_fhir(found)
        people = [patient.from_fhir(self._resource(conn, "Patient", pid)) for pid in record.people_ids]
        roles = {p.id: p.role for p in people}
        intake = forms.intake_from_fhir(self._resource(conn, "QuestionnaireResponse", f"{case_id}-3a"), roles)
        case = MultiAgencyCase(
            id=case_id,
            jurisdiction=record.jurisdiction,
            referral=intake.referral,
            people=people,
            team=care_team.from_fhir(self._resource(conn, "CareTeam", f"{case_id}-team")),
            status=record.status,
            rfi_inputs=list(intake.rfi_inputs),
            notices=list(intake.notices),
        )
        case.meetings = [intake.initial_meeting] if intake.initial_meeting else []
        index = 1
        while (review := self._resource(conn, "QuestionnaireResponse", f"{case_id}-3b-{index}")) is not None:
            case.meetings.append(forms.review_from_fhir(review))
            index += 1
        closure = self._resource(conn, "QuestionnaireResponse", f"{case_id}-3c")
        case.closure = forms.closure_from_fhir(closure) if closure else None
        tasks = self._search(conn, "Task", [("focus", f"EpisodeOfCare/{case_id}")])
        case.actions = [safety_action.from_fhir(t) for t in tasks if _task_type(t) == TaskType.SAFETY_ACTION.value]
        case.rfis = [rfi.from_fhir(t) for t in tasks if _task_type(t) == TaskType.RFI.value]
        case.consents = [
            consent.from_fhir(c) for pid in record.people_ids for c in self._search(conn, "Consent", [("patient", f"Patient/{pid}")])
        ]
        return case

    # -- writing -----------------------------------------------------------------------------

    def save(self, conn: Connection, case: MultiAgencyCase) -> int:
        """Write every resource of the case whose content changed; return how many were written."""
        written = 0
        for resource in case_resources(case):
            self._keep_labels(conn, resource)
            written += self.store.write_if_changed(conn, resource, index_entries(resource))
        return written

    def _keep_labels(self, conn: Connection, resource: dict) -> None:
        """The domain knows nothing of security labels, so a rewrite from it keeps the ones its
        holder put on the stored record (an excluded-information label must not be lost because
        another team member recorded a meeting)."""
        stored = self.store.current(conn, resource["resourceType"], resource["id"])
        labels = orjson.loads(stored.body).get("meta", {}).get("security") if stored and not stored.deleted else None
        if labels:
            resource.setdefault("meta", {})["security"] = labels


def _task_type(task: dict) -> str | None:
    return next((c["code"] for c in task.get("code", {}).get("coding", [])), None)
