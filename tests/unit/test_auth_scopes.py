"""SMART system scopes, v1 and v2, and the gateway's own admin and audit scopes."""

import pytest

from gateway.auth.scopes import ADMIN, AUDIT, ScopeError, ScopeSet


@pytest.mark.parametrize(
    "scope,allowed,refused",
    [
        ("system/Task.rs", [("Task", "read"), ("Task", "search")], [("Task", "create"), ("Patient", "read")]),
        ("system/Task.cruds", [("Task", i) for i in ("create", "read", "update", "delete", "search")], [("Consent", "read")]),
        ("system/*.r", [("Patient", "read"), ("Task", "read")], [("Task", "search")]),
        ("system/Task.read", [("Task", "read"), ("Task", "search")], [("Task", "update")]),  # v1
        ("system/Task.write", [("Task", "create"), ("Task", "update"), ("Task", "delete")], [("Task", "read")]),
        ("system/*.*", [("Consent", "delete"), ("Patient", "search")], []),
    ],
)
def test_v1_and_v2_scopes_allow_what_they_say(scope, allowed, refused):
    scopes = ScopeSet.parse(scope)
    assert all(scopes.allows(t, i) for t, i in allowed)
    assert not any(scopes.allows(t, i) for t, i in refused)


def test_interactions_may_be_given_by_letter():
    assert ScopeSet.parse("system/Task.u").allows("Task", "u")


def test_admin_and_audit_are_apart_from_case_scopes():
    everything = ScopeSet.parse("system/*.cruds system/*.*")
    assert not everything.has(ADMIN) and not everything.has(AUDIT)
    assert ScopeSet.parse("admin").has(ADMIN) and not ScopeSet.parse("admin").allows("Task", "read")


@pytest.mark.parametrize(
    "text",
    ["user/Task.rs", "patient/*.read", "system/Task.sr", "system/Task.x", "system/Task", "openid", "system/Task.rs?category=x", "system/task.r"],
)
def test_scopes_the_gateway_does_not_grant_are_refused(text):
    with pytest.raises(ScopeError):
        ScopeSet.parse(text)


@pytest.mark.parametrize(
    "requested,registered,granted",
    [
        ("system/Task.rs", "system/Task.cruds", "system/Task.rs"),  # within: as asked
        ("system/Task.read", "system/*.cruds", "system/Task.read"),  # v1 echoed as asked
        ("system/Task.cruds", "system/Task.rs", "system/Task.rs"),  # narrowed to the registration
        ("system/*.rs", "system/Task.cruds system/Patient.r", "system/Task.rs system/Patient.r"),  # a wildcard never widens
        ("system/Task.rs admin", "system/Task.rs", "system/Task.rs"),  # admin not registered: dropped
        ("system/Consent.r", "system/Task.rs", ""),  # nothing in common
        ("audit system/Task.r", "audit", "audit"),
    ],
)
def test_a_client_is_granted_the_intersection_of_what_it_asks_and_what_is_registered(requested, registered, granted):
    assert ScopeSet.parse(requested).granted_from(ScopeSet.parse(registered)).text == granted


def test_a_scope_split_over_two_registered_scopes_is_granted_whole():
    assert ScopeSet.parse("system/Task.rs").granted_from(ScopeSet.parse("system/Task.r system/*.s")).text == "system/Task.rs"
