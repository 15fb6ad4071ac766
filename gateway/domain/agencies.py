"""Agencies that work a case together, as the information-sharing law sees them."""

from dataclasses import dataclass, field

from gateway.domain.vocabulary import PUV_SERVICE_TYPES, AgencyType, Jurisdiction, PrescribedStatus


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    type: AgencyType
    jurisdiction: Jurisdiction
    prescribed: frozenset[PrescribedStatus] = field(default_factory=frozenset)

    @property
    def works_with_person_using_violence(self) -> bool:
        """Services whose client is the person using violence: never told where she is (DESIGN 3)."""
        return self.type in PUV_SERVICE_TYPES
