"""A policy file that is malformed or contradictory is refused, naming the file, the rule and the problem."""

import shutil
from pathlib import Path

import pytest

from gateway.consent.engine import POLICIES
from gateway.consent.policy import PolicyError, load_policies

RULE = """
  - id: {id}
    when: {when}
    decision: {decision}
    legal_basis: vic-fvpa-part5a
    cites: "FVPA 2008 (Vic) Part 5A"
    explanation: "test rule"
    status: {status}
"""
HEADER = """scheme: VIC
title: test
revision: "t1"
excluded_information: {legal_basis: vic-fvpa-part5a, cites: "s144C"}
rules:"""


@pytest.fixture
def policies(tmp_path) -> Path:
    for path in POLICIES.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def write_vic(directory: Path, *rules: dict) -> None:
    body = "".join(RULE.format(**{"when": "{}", "decision": "deny", "status": "settled", **r}) for r in rules)
    (directory / "vic.yaml").write_text(HEADER + body)


def refused(directory: Path) -> str:
    with pytest.raises(PolicyError) as error:
        load_policies(directory)
    return str(error.value)


def test_the_shipped_policies_load():
    assert {p.value for p in load_policies(POLICIES)} == {"VIC", "QLD", "WA", "DEFAULT"}


def test_malformed_yaml_names_file_and_line(policies):
    (policies / "vic.yaml").write_text(HEADER + "\n  - id: [unclosed\n")
    message = refused(policies)
    assert message.startswith("vic.yaml, line ") and "not valid YAML" in message


def test_an_unknown_code_names_the_rule_and_lists_what_is_allowed(policies):
    write_vic(policies, {"id": "R1", "when": "{subject_role: perpetrator}"})
    message = refused(policies)
    assert "vic.yaml, line 6, rule R1" in message and "unknown code 'perpetrator'" in message and "person-using-violence" in message


def test_an_unknown_condition_or_field_is_refused(policies):
    write_vic(policies, {"id": "R1", "when": "{colour: red}"})
    assert "unknown condition 'colour'" in refused(policies)
    (policies / "vic.yaml").write_text(HEADER + RULE.format(id="R1", when="{}", decision="allow", status="settled"))
    message = refused(policies)
    assert "rule R1" in message and "decision" in message


def test_a_permit_on_unsettled_law_is_refused(policies):
    write_vic(policies, {"id": "R1", "when": "{serious_threat: true}", "decision": "permit", "status": "verify"})
    assert "unsettled points decide 'refer'" in refused(policies)


def test_contradictory_rules_are_refused(policies):
    write_vic(policies, {"id": "R1", "when": "{consent: given}", "decision": "permit"}, {"id": "R2", "when": "{consent: given}"})
    message = refused(policies)
    assert "rule R2" in message and "contradicts rule R1" in message


def test_a_rule_an_earlier_rule_always_beats_is_refused(policies):
    write_vic(
        policies,
        {"id": "BROAD", "when": "{subject_role: [adult-victim-survivor, third-party]}"},
        {"id": "NARROW", "when": "{subject_role: third-party, consent: given}", "decision": "permit"},
    )
    message = refused(policies)
    assert "rule NARROW: can never apply" in message and "BROAD" in message


def test_the_strict_default_is_required(policies):
    (policies / "default.yaml").unlink()
    assert "strict default" in refused(policies)


def test_a_bad_policy_stops_the_gateway_with_one_line(tmp_path, policies):
    from gateway.store.encryption import generate_kek
    from tests.support.server import gateway_env, run_gateway

    write_vic(policies, {"id": "R1", "when": "{subject_role: perpetrator}"})
    env = gateway_env(tmp_path, generate_kek(), GATEWAY_CONSENT_POLICIES_DIR=str(policies))
    for command in (["db", "upgrade"], ["consent", "policies"]):
        result = run_gateway(command, env)
        assert result.returncode == 1 and result.stderr.count("\n") == 1
        assert "vic.yaml, line 6, rule R1" in result.stderr and "perpetrator" in result.stderr
