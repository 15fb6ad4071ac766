"""`gateway demo`: work the case from the tools on the configured database and print each step.

After every step the case's FHIR resources are written in one transaction Bundle through the
same FHIR service the API uses, so the demo leaves a real record behind (`/fhir/EpisodeOfCare`).
"""

import asyncio
from datetime import datetime, time, timezone
from typing import Callable

import orjson

from gateway.demo import scenario
from gateway.demo.report import case_report, current_multi_agency_risk
from gateway.domain.case import MultiAgencyCase
from gateway.errors import BusinessRuleViolation
from gateway.fhir.service import FhirService
from gateway.fhir.transactions import process_bundle
from gateway.mappings.case_resources import case_resources

AGENCY_TYPES = {a.id: a.type for a in scenario.AGENCIES}


def run_demo(fhir: FhirService, base: str, say: Callable[[str], None] = print) -> MultiAgencyCase:
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
        stored = asyncio.run(_store(fhir, case, base))
        say(f"stored {stored} FHIR resources in one transaction; multi-agency risk now: {current_multi_agency_risk(case)}")
        say(case_report(case, AGENCY_TYPES, _as_of(case)))
    return state["case"]


async def _store(fhir: FhirService, case: MultiAgencyCase, base: str) -> int:
    resources = case_resources(case, scenario.AGENCIES)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
        ],
    }
    await process_bundle(fhir, orjson.dumps(bundle), base)
    return len(resources)


def _as_of(case: MultiAgencyCase) -> datetime:
    """The demo's clock: the day of the latest thing that happened, so overdue flags make sense."""
    days = [case.referral.referral_date] + [m.meeting_date for m in case.meetings]
    if case.closure:
        days.append(case.closure.closure_date)
    return datetime.combine(max(days), time(17), tzinfo=timezone.utc)
