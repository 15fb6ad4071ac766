"""Every FHIR resource that records a case, in an order a transaction can store them in."""

from gateway.domain.agencies import Agency
from gateway.domain.case import MultiAgencyCase
from gateway.domain.events import RedFlagRaised
from gateway.domain.vocabulary import FlagType
from gateway.mappings import (
    care_plan,
    care_team,
    consent,
    episode,
    flag,
    organization,
    patient,
    questionnaire_response,
    risk_assessment,
    rfi,
    safety_action,
)


def case_resources(case: MultiAgencyCase, agencies: list[Agency] = ()) -> list[dict]:
    """`agencies`: Organizations to include (the registry usually holds them already)."""
    record = episode.CaseRecord.of(case)
    victim = record.victim_survivor_id
    found = [organization.to_fhir(a) for a in agencies]
    found += [patient.to_fhir(p) for p in case.people]
    found.append(care_team.to_fhir(case.team, case.id, victim))
    found.append(episode.to_fhir(record))
    for i, determination in enumerate(case.risk_history()):
        found += risk_assessment.to_fhir(determination, f"{case.id}-risk-{i}", victim, case.id)
    found += [safety_action.to_fhir(a, case.id, victim) for a in case.actions]
    found.append(care_plan.to_fhir(case.id, victim, [a.id for a in case.actions]))
    found += [rfi.to_fhir(r, case.id) for r in case.rfis]
    found += [consent.to_fhir(c) for c in case.consents]
    found.append(questionnaire_response.intake_to_fhir(case))
    found += [questionnaire_response.review_to_fhir(case, i) for i in range(1, len(case.meetings))]
    if case.closure is not None:
        found.append(questionnaire_response.closure_to_fhir(case))
    found += [flag.to_fhir(f, flag_id(f), victim, case.team.lead_agency()) for f in case.events if isinstance(f, RedFlagRaised)]
    return found


def flag_id(raised: RedFlagRaised) -> str:
    """Stable across reloads of the case: one flag per kind per case per day."""
    kind = list(FlagType).index(raised.flag)  # FHIR ids are at most 64 characters: keep it short
    return f"{raised.case_id}-flag-{raised.on:%Y%m%d}-{kind}"
