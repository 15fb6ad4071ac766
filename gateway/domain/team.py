"""The multi-agency team: who sits on it, in which role, and who has acknowledged confidentiality.

MACM: a lead agency is nominated for each case (exactly one), and representatives sign or
verbally endorse confidentiality (step 4) before information is shared with them.
"""

from dataclasses import dataclass, field
from datetime import date

from gateway.domain.vocabulary import TeamRole
from gateway.errors import BusinessRuleViolation


@dataclass
class TeamMember:
    agency_id: str
    representative: str
    roles: set[TeamRole] = field(default_factory=lambda: {TeamRole.CORE_MEMBER})
    confidentiality_acknowledged_on: date | None = None

    @property
    def may_receive_information(self) -> bool:
        return self.confidentiality_acknowledged_on is not None and TeamRole.OBSERVER not in self.roles


@dataclass
class Team:
    members: list[TeamMember] = field(default_factory=list)

    def member(self, agency_id: str) -> TeamMember | None:
        return next((m for m in self.members if m.agency_id == agency_id), None)

    def includes(self, agency_id: str) -> bool:
        return self.member(agency_id) is not None

    def add(self, member: TeamMember) -> None:
        if self.includes(member.agency_id):
            raise BusinessRuleViolation.at("team", f"Agency {member.agency_id} is already on the team")
        if TeamRole.LEAD_AGENCY in member.roles and self.lead_agency() is not None:
            raise BusinessRuleViolation.at(
                "team.roles",
                f"The case already has a lead agency ({self.lead_agency()}); nominate a new lead instead of adding a second",
            )
        self.members.append(member)

    def lead_agency(self) -> str | None:
        leads = [m.agency_id for m in self.members if TeamRole.LEAD_AGENCY in m.roles]
        return leads[0] if leads else None

    def nominate_lead(self, agency_id: str) -> None:
        """Move the lead-agency role to `agency_id` (a member), so there is always exactly one."""
        new_lead = self.require_member(agency_id, "lead_agency")
        for m in self.members:
            m.roles.discard(TeamRole.LEAD_AGENCY)
        new_lead.roles.add(TeamRole.LEAD_AGENCY)

    def acknowledge_confidentiality(self, agency_id: str, on: date) -> None:
        self.require_member(agency_id, "agency").confidentiality_acknowledged_on = on

    def require_member(self, agency_id: str, path: str) -> TeamMember:
        member = self.member(agency_id)
        if member is None:
            raise BusinessRuleViolation.at(path, f"Agency {agency_id} is not on the case's team")
        return member

    def check(self) -> None:
        leads = [m.agency_id for m in self.members if TeamRole.LEAD_AGENCY in m.roles]
        if len(leads) != 1:
            found = ", ".join(leads) if leads else "none"
            raise BusinessRuleViolation.at("team", f"A case has exactly one lead agency (found: {found})")
