"""What happened on a case that other agencies may need to hear about (past tense, plain data)."""

from dataclasses import dataclass
from datetime import date

from gateway.domain.vocabulary import FlagType, RiskLevel


@dataclass(frozen=True)
class CaseReferred:
    case_id: str
    referring_agency_id: str


@dataclass(frozen=True)
class RiskLevelChanged:
    case_id: str
    previous: RiskLevel | None
    current: RiskLevel
    on: date


@dataclass(frozen=True)
class RedFlagRaised:
    case_id: str
    flag: FlagType
    on: date
    description: str


@dataclass(frozen=True)
class InformationRequested:
    case_id: str
    rfi_id: str
    target_agency_id: str


@dataclass(frozen=True)
class CaseClosed:
    case_id: str
    on: date
