"""The rule every test service follows: under CI a missing service fails the run, elsewhere it skips."""

import pytest
from tests.support.services import java_problem, unavailable

def test_ci_fails(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the X is not available: gone"):
        unavailable("the X", "gone")

def test_elsewhere_skips(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("the X", "gone")

def test_no_java():
    assert "not on PATH" in java_problem("the X", java="no-such-java")
    assert java_problem("the X", need_compiler=True) is None
