"""What a request's scopes allow, before any data is read (gateway.auth.policy)."""

import pytest

from gateway.auth.caller import Caller
from gateway.auth.policy import AccessPolicy
from gateway.auth.scopes import ScopeSet
from gateway.errors import Forbidden


def policy(scopes: str) -> AccessPolicy:
    return AccessPolicy(Caller("qps", "qps-cad", ScopeSet.parse(scopes), "jti", 0, "https://gw"))


@pytest.mark.parametrize(
    "scopes,resource_type,interaction,allowed",
    [
        ("system/Task.rs", "Task", "read", True),
        ("system/Task.rs", "Task", "search", True),
        ("system/Task.rs", "Task", "update", False),
        ("system/Task.read", "Task", "search", True),
        ("system/Task.write", "Task", "read", False),
        ("system/Task.write", "Task", "delete", True),
        ("system/*.cruds", "Consent", "create", True),
        ("system/Task.cruds", "Patient", "read", False),
        ("system/*.cruds", "AuditEvent", "read", False),  # no wildcard reaches the ledger
        ("audit", "AuditEvent", "search", True),
        ("audit", "AuditEvent", "create", False),  # written by the gateway only
        ("audit system/*.cruds admin", "AuditEvent", "delete", False),
        ("audit", "Patient", "read", False),
        ("system/*.cruds", "Organization", "read", True),
        ("system/*.cruds", "Organization", "update", False),  # the registry: admin too
        ("system/*.cruds admin", "Organization", "update", True),
        ("system/*.cruds", "StructureDefinition", "create", False),
    ],
)
def test_scopes_per_interaction(scopes, resource_type, interaction, allowed):
    checked = policy(scopes)
    if allowed:
        checked.require(resource_type, interaction)
        assert checked.refusals == []
    else:
        with pytest.raises(Forbidden):
            checked.require(resource_type, interaction)
        assert len(checked.refusals) == 1 and checked.refusals[0].reason in ("insufficient-scope", "ledger-read-only")


def test_a_missing_scope_is_named_in_the_challenge():
    with pytest.raises(Forbidden) as refused:
        policy("system/Task.r").require("Task", "search")
    assert refused.value.headers["WWW-Authenticate"] == 'Bearer realm="gateway", error="insufficient_scope", scope="system/Task.s"'
    assert refused.value.status == 403
