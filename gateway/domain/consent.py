"""Consent to share, as recorded for one person (and, optionally, for named recipients)."""

from dataclasses import dataclass
from datetime import date

from gateway.domain.vocabulary import ConsentStatus, Jurisdiction
from gateway.errors import BusinessRuleViolation

NEEDS_REASON = (ConsentStatus.NOT_SOUGHT, ConsentStatus.UNSAFE_TO_SEEK)


@dataclass(frozen=True)
class ConsentRecord:
    id: str
    subject_id: str
    status: ConsentStatus
    recorded_on: date
    scheme: Jurisdiction
    recipients: tuple[str, ...] = ()  # agency ids; empty means the whole team
    reason: str | None = None  # why consent was not sought, or why seeking it was unsafe
    views_sought: bool = False
    views: str | None = None  # the person's views, where sought

    def __post_init__(self) -> None:
        if self.status in NEEDS_REASON and not (self.reason and self.reason.strip()):
            raise BusinessRuleViolation.at(
                "consent.reason", f"Consent recorded as '{self.status.value}' needs the reason it was not sought"
            )
        if self.views and not self.views_sought:
            raise BusinessRuleViolation.at("consent.views", "Views are recorded but views_sought is false")

    def covers(self, agency_id: str) -> bool:
        return not self.recipients or agency_id in self.recipients
