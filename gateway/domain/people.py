"""The people a case is about. Every one is a FHIR Patient; the role says who they are here."""

from dataclasses import dataclass
from datetime import date

from gateway.domain.vocabulary import IndigenousStatus, SubjectRole


@dataclass(frozen=True)
class Person:
    id: str
    role: SubjectRole
    name: str
    birth_date: date | None = None
    age: int | None = None  # the 3A form asks for children's ages where no birth date is known
    address: str | None = None
    indigenous_status: IndigenousStatus | None = None
    cultural_identity: str | None = None  # diverse cultural identity, in the person's own words

    @property
    def is_victim_survivor(self) -> bool:
        return self.role in (SubjectRole.ADULT_VICTIM_SURVIVOR, SubjectRole.CHILD_VICTIM_SURVIVOR)

    @property
    def identifies_as_first_nations(self) -> bool:
        return self.indigenous_status is not None and self.indigenous_status.is_first_nations
