"""Risk levels as determined by the victim survivor, the practitioner and the multi-agency team,
and the risk and protective factors they rest on."""

from dataclasses import dataclass
from datetime import date

from gateway.domain.vocabulary import FactorPresence, ProtectiveFactor, RiskDeterminedBy, RiskFactor, RiskLevel
from gateway.errors import BusinessRuleViolation


@dataclass(frozen=True)
class FactorObservation:
    """One risk or protective factor as the team recorded it (coded where the list has it)."""

    text: str
    risk_factor: RiskFactor | None = None
    protective_factor: ProtectiveFactor | None = None
    presence: FactorPresence = FactorPresence.PRESENT
    frequency: str | None = None  # the 3B tool asks for frequency and severity of risk factors
    severity: str | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise BusinessRuleViolation.at("factors.description", "Describe the factor in words (the forms record it as text)")
        if self.risk_factor is not None and self.protective_factor is not None:
            raise BusinessRuleViolation.at("factors", "A factor is either a risk factor or a protective factor, not both")

    @property
    def is_protective(self) -> bool:
        return self.protective_factor is not None


@dataclass(frozen=True)
class RiskDetermination:
    level: RiskLevel
    determined_by: RiskDeterminedBy
    on: date
    rationale: str = ""
    factors: tuple[FactorObservation, ...] = ()
