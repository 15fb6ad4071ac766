"""Requests For Information between agencies on a case (3A Part 2), and their lifecycle.

requested -> accepted -> in-progress -> completed, or rejected / failed on the way. The status
words are FHIR's task-status codes, since an RFI travels as a Task.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from gateway.domain.vocabulary import ExcludedInformation, InformationCategory, RfiPurpose, WithheldReason
from gateway.errors import BusinessRuleViolation

URGENT_DUE = timedelta(hours=4)  # imminent risk: answers are needed within the working day
STANDARD_DUE = timedelta(days=3)


class RfiStatus(str, Enum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"


_NEXT = {
    RfiStatus.REQUESTED: {RfiStatus.ACCEPTED, RfiStatus.REJECTED, RfiStatus.FAILED},
    RfiStatus.ACCEPTED: {RfiStatus.IN_PROGRESS, RfiStatus.COMPLETED, RfiStatus.FAILED},
    RfiStatus.IN_PROGRESS: {RfiStatus.COMPLETED, RfiStatus.FAILED},
}


@dataclass(frozen=True)
class ResponseItem:
    """One piece of information given in answer, labelled so the consent engine can judge it."""

    category: InformationCategory
    subject_id: str
    text: str
    recorded_on: datetime
    excluded: frozenset[ExcludedInformation] = frozenset()  # the holder's labels: never released


@dataclass(frozen=True)
class WithheldItem:
    """An item the consent engine did not release: the requester learns its category, not its content."""

    category: InformationCategory
    subject_id: str
    recorded_on: datetime
    reason: WithheldReason


@dataclass
class InformationRequest:
    id: str
    requester_agency_id: str
    target_agency_id: str
    subject_ids: tuple[str, ...]
    purpose: RfiPurpose
    categories: tuple[InformationCategory, ...]
    requested_on: datetime
    due: datetime
    urgent: bool = False
    question: str = ""
    status: RfiStatus = RfiStatus.REQUESTED
    status_reason: str = ""
    responses: list[ResponseItem] = field(default_factory=list)
    withheld: list[WithheldItem] = field(default_factory=list)
    overdue_notified: bool = False

    def __post_init__(self) -> None:
        if not self.subject_ids:
            raise BusinessRuleViolation.at("subjects", "An RFI names at least one person it is about")
        if not self.categories:
            raise BusinessRuleViolation.at("categories", "An RFI names the categories of information it asks for")
        if self.requester_agency_id == self.target_agency_id:
            raise BusinessRuleViolation.at("target_agency", "An agency cannot send an RFI to itself")
        if self.due <= self.requested_on:
            raise BusinessRuleViolation.at("due", "An RFI's due time must be after the time it was requested")

    @staticmethod
    def default_due(requested_on: datetime, urgent: bool) -> datetime:
        return requested_on + (URGENT_DUE if urgent else STANDARD_DUE)

    @property
    def is_outstanding(self) -> bool:
        return self.status in (RfiStatus.REQUESTED, RfiStatus.ACCEPTED, RfiStatus.IN_PROGRESS)

    def is_overdue(self, now: datetime) -> bool:
        return self.is_outstanding and self.due < now

    def move_to(self, status: RfiStatus, reason: str = "") -> None:
        if status not in _NEXT.get(self.status, set()):
            raise BusinessRuleViolation.at("status", f"An RFI cannot go from {self.status.value} to {status.value}")
        if status in (RfiStatus.REJECTED, RfiStatus.FAILED) and not reason:
            raise BusinessRuleViolation.at("status_reason", f"Say why the RFI is {status.value}")
        self.status, self.status_reason = status, reason

    def respond(self, items: list[ResponseItem], withheld: list[WithheldItem] = ()) -> None:
        """`items`: what is released; `withheld`: what the consent engine kept back. Answering a
        request that was not yet accepted accepts it."""
        if self.status is RfiStatus.REQUESTED:
            self.status = RfiStatus.ACCEPTED
        if self.status not in (RfiStatus.ACCEPTED, RfiStatus.IN_PROGRESS):
            raise BusinessRuleViolation.at("status", f"Only an open RFI can be answered (it is {self.status.value})")
        self.responses.extend(items)
        self.withheld.extend(withheld)
        self.status = RfiStatus.COMPLETED
