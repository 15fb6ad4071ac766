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
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path

from gateway.consent.model import ConsentOnFile, Decision, DecisionRequest, Obligation, Outcome, Party
from gateway.consent.policy import Policy, load_policies
from gateway.domain.vocabulary import (
    PUV_SERVICE_TYPES,
    ConsentStatus,
    InformationCategory,
    Jurisdiction,
    LegalBasis,
    SubjectRole,
)

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
            return self._decide(request, policy, _decision_id(request, policy))
        except Exception as exc:  # fail closed
            log.error("consent engine error %s: %s; denying", type(exc).__name__, exc)
            return Decision(Outcome.DENY, "none", "engine-error", _REFUSAL, (),
                            "The consent engine could not decide, so nothing is released.", policy.label, "engine-error")

    def _decide(self, request: DecisionRequest, policy: Policy, decision_id: str) -> Decision:
        if request.excluded:
            basis = policy.spec.excluded_information
            labels = ", ".join(sorted(e.display.lower() for e in request.excluded))
            return Decision(
                Outcome.DENY, f"{LegalBasis(basis['legal_basis']).display}: {basis['cites']}", f"{policy.spec.scheme.value}-excluded-information",
                _REFUSAL, (), f"Excluded information is never shared, whatever else holds (consent does not cure it): {labels}.", policy.label,
                decision_id,
            )
        if (
            _reveals_where_she_is(request)
            and request.requester.agency_type in PUV_SERVICE_TYPES
            and request.requester.agency_type not in policy.spec.location_to_puv_services
        ):
            return Decision(
                Outcome.DENY, "Excluded information: could endanger a person's life or safety (FVPA 2008 (Vic) s144C; and the "
                "safety-first principle of every scheme)", "victim-survivor-location-to-puv-service",
                _REFUSAL, (), "The victim survivor's location (or housing that reveals it) is never sent to a service that works "
                "with the person using violence, unless the scheme's policy lists that service.",
                policy.label, decision_id,
            )
        consent = effective_consent(request)
        for rule in policy.rules:
            if rule.matches(request, consent):
                return rule.decision(policy.label, decision_id)
        return Decision(Outcome.DENY, "none", f"{policy.spec.scheme.value}-no-rule", _REFUSAL, (),
                        "No rule of the scheme covers this request, so nothing is released.", policy.label, decision_id)


def _reveals_where_she_is(request: DecisionRequest) -> bool:
    """Her location itself, or a victim survivor's housing information, which gives it away."""
    if request.category is InformationCategory.VICTIM_SURVIVOR_LOCATION:
        return True
    victim = request.subject_role in (SubjectRole.ADULT_VICTIM_SURVIVOR, SubjectRole.CHILD_VICTIM_SURVIVOR)
    return victim and request.category is InformationCategory.HOUSING


def effective_consent(request: DecisionRequest) -> ConsentStatus:
    """The consent that holds for this recipient at the time of release.

    Consent given to named recipients does not extend to others (for them it was never sought);
    a withdrawal counts from the moment it was made, so a release before that moment was covered.
    """
    consent: ConsentOnFile = request.consent
    at = request.at or datetime.now(timezone.utc)
    if consent.date is not None and consent.date > at:
        # at the time of release this answer had not been given; a later withdrawal means it was given then
        covered = consent.status is ConsentStatus.WITHDRAWN and consent.covers(request.requester)
        return ConsentStatus.GIVEN if covered else ConsentStatus.NOT_SOUGHT
    if consent.status is ConsentStatus.GIVEN and not consent.covers(request.requester):
        return ConsentStatus.NOT_SOUGHT
    return consent.status


def _decision_id(request: DecisionRequest, policy: Policy) -> str:
    """A hash of the request's fields in a fixed order (sets sorted), so every process agrees.

    Vocabulary members are str subclasses whose text is their code, so they join as they are.
    """
    r, c = request, request.consent
    fields = (
        policy.label, r.jurisdiction, r.purpose, _party(r.requester), _party(r.releaser), r.subject_role, r.category,
        _sorted(r.excluded), c.status, ",".join(sorted(c.recipients)), _instant(c.date), "1" if r.serious_threat else "0",
        "1" if r.child_at_risk else "0", _instant(r.at),
    )
    return hashlib.blake2b("|".join(fields).encode(), digest_size=12).hexdigest()


@lru_cache(maxsize=4096)
def _party(party: Party) -> str:
    return f"{party.agency_type}:{_sorted(party.prescribed)}:{party.id or ''}"


@lru_cache(maxsize=1024)
def _sorted(codes: frozenset) -> str:
    return ",".join(sorted(codes))


def _instant(moment: datetime | None) -> str:
    return repr(moment.timestamp()) if moment else ""
