"""`gateway demo`: work the case from the tools on the configured database and print each step.

After every step the case is saved by the same repository the native API uses, in one
transaction that writes only the resources the step changed, so the demo leaves a real record
behind (`/fhir/EpisodeOfCare/case-logan-0427`, with one version per real change).
"""

from datetime import datetime, time, timezone
from typing import Callable

from gateway.cases.repository import CaseRepository
from gateway.demo import scenario
from gateway.demo.report import case_report, current_multi_agency_risk
from gateway.domain.case import MultiAgencyCase
from gateway.errors import BusinessRuleViolation
from gateway.fhir.indexing import index_entries
from gateway.mappings import organization
from gateway.store.database import Database

AGENCY_TYPES = {a.id: a.type for a in scenario.AGENCIES}


def run_demo(db: Database, repository: CaseRepository, say: Callable[[str], None] = print) -> MultiAgencyCase:
    db.run_write(lambda conn: _register_agencies(conn, repository))
    state: dict = {}
    for number, step in enumerate(scenario.steps(), 1):
        say(f"\n=== Step {number}: {step.title} ({step.form}) ===")
        try:
            step.run(state)
        except BusinessRuleViolation as refusal:
            if not step.refused:
                raise
            say(f"REFUSED, as the tools require: {refusal.message}")
            continue
        case = state["case"]
        stored = db.run_write(lambda conn: repository.save(conn, case))
        say(f"wrote {stored} changed FHIR resources in one transaction; multi-agency risk now: {current_multi_agency_risk(case)}")
        say(case_report(case, AGENCY_TYPES, _as_of(case)))
    return state["case"]


def _register_agencies(conn, repository: CaseRepository) -> None:
    """The worked case's agencies, as the registry would hold them (written when missing or changed)."""
    for agency in scenario.AGENCIES:
        resource = organization.to_fhir(agency)
        repository.store.write_if_changed(conn, resource, index_entries(resource))


def _as_of(case: MultiAgencyCase) -> datetime:
    """The demo's clock: the day of the latest thing that happened, so overdue flags make sense."""
    days = [case.referral.referral_date] + [m.meeting_date for m in case.meetings]
    if case.closure:
        days.append(case.closure.closure_date)
    return datetime.combine(max(days), time(17), tzinfo=timezone.utc)
