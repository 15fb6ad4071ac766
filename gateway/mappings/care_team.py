"""Team <-> CareTeam: members are agencies with their roles, representative and dated
confidentiality acknowledgement (MACM step 4)."""

from gateway.domain.team import Team, TeamMember
from gateway.domain.vocabulary import TeamRole
from gateway.mappings.common import (
    concept,
    ext,
    ext_value,
    fhir_date,
    parse_date,
    profile_url,
    read_codes,
    reference,
    reference_id,
    without_none,
)

PROFILE = profile_url("fv-care-team")


def to_fhir(team: Team, case_id: str, victim_survivor_id: str) -> dict:
    return {
        "resourceType": "CareTeam",
        "id": f"{case_id}-team",
        "meta": {"profile": [PROFILE]},
        "status": "active",
        "name": f"Multi-agency team for case {case_id}",
        "subject": reference("Patient", victim_survivor_id),
        "participant": [_participant(m) for m in team.members],
    }


def _participant(member: TeamMember) -> dict:
    extensions = [ext("representative", valueString=member.representative)]
    if member.confidentiality_acknowledged_on:
        extensions.append(ext("confidentiality-acknowledged", valueDate=fhir_date(member.confidentiality_acknowledged_on)))
    roles = sorted(member.roles, key=lambda r: list(TeamRole).index(r))
    return without_none({"extension": extensions, "role": [concept(r) for r in roles], "member": reference("Organization", member.agency_id)})


def from_fhir(resource: dict) -> Team:
    return Team(
        [
            TeamMember(
                agency_id=reference_id(p["member"], "Organization"),
                representative=ext_value(p, "representative"),
                roles=set(read_codes(p.get("role"), TeamRole)),
                confidentiality_acknowledged_on=parse_date(ext_value(p, "confidentiality-acknowledged")),
            )
            for p in resource.get("participant", [])
        ]
    )
