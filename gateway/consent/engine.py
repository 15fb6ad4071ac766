"""Decide, per information item, whether it may leave the gateway.

Order (research notes 5.2): excluded information first (consent never cures it), then the
victim survivor's location to services that work with the person using violence, then the
scheme's rules in order; the first rule that matches decides and anything no rule covers is
denied. The engine fails closed: an error while deciding is a deny, logged with the rule
'engine-error'. A decision is a pure function of the request and the policy revision, so its id
is a hash of both.
"""

import hashlib
import logging
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from gateway.consent.model import ConsentOnFile, Decision, DecisionRequest, Obligation, Outcome
from gateway.consent.policy import Policy, load_policies
from gateway.domain.vocabulary import PUV_SERVICE_TYPES, ConsentStatus, InformationCategory, Jurisdiction, LegalBasis

log = logging.getLogger("gateway.consent")
POLICIES = Path(__file__).parent / "policies"
_REFUSAL = (Obligation.RECORD_REFUSAL, Obligation.WRITTEN_REASONS)


class ConsentEngine:
    def __init__(self, policies: dict[Jurisdiction, Policy]):
        self.policies = policies

    @classmethod
    def from_directory(cls, directory: Path = POLICIES) -> "ConsentEngine":
        return cls(load_policies(directory))

    def decide(self, request: DecisionRequest) -> Decision:
        policy = self.policies.get(request.jurisdiction) or self.policies[Jurisdiction.DEFAULT]
        try:
            decision = self._decide(request, policy)
        except Exception as exc:  # fail closed
            log.error("consent engine error %s: %s; denying", type(exc).__name__, exc)
            decision = Decision(Outcome.DENY, "none", "engine-error", _REFUSAL, (),
                                "The consent engine could not decide, so nothing is released.", policy.label)
        return replace(decision, decision_id=_decision_id(request, policy))

    def _decide(self, request: DecisionRequest, policy: Policy) -> Decision:
        if request.excluded:
            basis = policy.spec.excluded_information
            labels = ", ".join(sorted(e.display.lower() for e in request.excluded))
            return Decision(
                Outcome.DENY, f"{LegalBasis(basis['legal_basis']).display}: {basis['cites']}", f"{policy.spec.scheme.value}-excluded-information",
                _REFUSAL, (), f"Excluded information is never shared, whatever else holds (consent does not cure it): {labels}.", policy.label,
            )
        if (
            request.category is InformationCategory.VICTIM_SURVIVOR_LOCATION
            and request.requester.agency_type in PUV_SERVICE_TYPES
            and request.requester.agency_type not in policy.spec.location_to_puv_services
        ):
            return Decision(
                Outcome.DENY, "Safety of the victim survivor (MARAM; DESIGN section 3)", "victim-survivor-location-to-puv-service",
                _REFUSAL, (), "The victim survivor's location is never sent to a service that works with the person using violence.",
                policy.label,
            )
        consent = effective_consent(request)
        for rule in policy.rules:
            if rule.matches(request, consent):
                spec = rule.spec
                return Decision(spec.decision, f"{spec.legal_basis.display}: {spec.cites}", spec.id, tuple(spec.obligations),
                                tuple(spec.redact), spec.explanation, policy.label)
        return Decision(Outcome.DENY, "none", f"{policy.spec.scheme.value}-no-rule", _REFUSAL, (),
                        "No rule of the scheme covers this request, so nothing is released.", policy.label)


def effective_consent(request: DecisionRequest) -> ConsentStatus:
    """The consent that holds for this recipient at the time of release.

    Consent given to named recipients does not extend to others (for them it was never sought);
    a withdrawal counts from the moment it was made, so a release before that moment was covered.
    """
    consent: ConsentOnFile = request.consent
    at = request.at or datetime.now(timezone.utc)
    if consent.status is ConsentStatus.WITHDRAWN and consent.date is not None and consent.date > at:
        return ConsentStatus.GIVEN if consent.covers(request.requester) else ConsentStatus.NOT_SOUGHT
    if consent.status is ConsentStatus.GIVEN and not consent.covers(request.requester):
        return ConsentStatus.NOT_SOUGHT
    return consent.status


def _decision_id(request: DecisionRequest, policy: Policy) -> str:
    return hashlib.sha256(f"{policy.label}|{request!r}".encode()).hexdigest()[:24]
