"""A search's SQL is compiled once per shape: values never decide the SQL, structure always does."""

import re

import pytest
from sqlalchemy import create_engine

from gateway.fhir.search import parse_search
from gateway.store import search_sql


def shape(resource_type, params, visible_to=None):
    return search_sql.shape_of(parse_search(resource_type, params), visible_to)


@pytest.mark.parametrize(
    "resource_type,a,b",
    [
        ("Task", [("status", "requested")], [("status", "completed")]),
        ("Task", [("owner", "Organization/qps")], [("owner", "Organization/health")]),
        ("Patient", [("identifier", "sys|1")], [("identifier", "other|2")]),
        ("Patient", [("name", "ann")], [("name", "bob")]),
        ("RiskAssessment", [("date", "ge2026-01-01")], [("date", "ge2020-06")]),
        ("Task", [("_count", "5"), ("_offset", "10")], [("_count", "50"), ("_offset", "0")]),
        ("Patient", [("_id", "a,b")], [("_id", "c,d")]),
        ("Patient", [("name", "ann")], [("name:contains", "ann")]),  # a prefix and a substring: both LIKE patterns
    ],
)
def test_queries_differing_only_in_values_share_one_shape(resource_type, a, b):
    (shape_a, values_a), (shape_b, values_b) = shape(resource_type, a), shape(resource_type, b)
    assert shape_a == shape_b
    assert values_a != values_b


@pytest.mark.parametrize(
    "resource_type,a,b",
    [
        ("Task", [("status", "requested")], [("status", "requested,completed")]),
        ("Task", [("status", "requested")], [("owner", "requested")]),
        ("RiskAssessment", [("date", "ge2026")], [("date", "le2026")]),
        ("Patient", [("name", "ann")], [("name:exact", "ann")]),
        ("Patient", [("identifier", "1")], [("identifier", "|1")]),
        ("Patient", [("identifier", "|1")], [("identifier", "sys|1")]),
        ("Task", [("_sort", "period")], [("_sort", "-period")]),
        ("Task", [("status", "ready")], [("status", "ready"), ("status", "ready")]),
        ("Task", [("owner", "qps")], [("owner", "Organization/qps")]),
    ],
)
def test_queries_of_another_structure_have_another_shape(resource_type, a, b):
    assert shape(resource_type, a)[0] != shape(resource_type, b)[0]


def test_visibility_is_part_of_the_shape_and_the_agency_a_value():
    anyone, _ = shape("Task", [("status", "ready")])
    qps, qps_values = shape("Task", [("status", "ready")], "qps")
    health, health_values = shape("Task", [("status", "ready")], "health")
    assert anyone != qps == health
    assert "qps" in qps_values and "health" in health_values


def test_like_patterns_are_escaped_values():
    _, values = shape("Patient", [("name:contains", "50%_off\\")])
    assert "%50\\%\\_off\\\\%" in values


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://gateway@localhost/gateway"])
def test_a_plan_binds_every_value_and_writes_none_into_its_sql(url):
    dialect = create_engine(url).dialect  # never connects
    query = parse_search("Task", [("owner", "qps,health"), ("period", "ge2026"), ("_id", "t-1,t-2"), ("_sort", "-period")])
    shape_, values = search_sql.shape_of(query, "an-agency")
    page, total = (search_sql._plan(shape_, kind).compiled_for(dialect) for kind in ("page", "total"))
    everything = {f"v{i}" for i in range(len(values))}
    assert bound(page) == everything
    assert bound(total) == everything - {f"v{shape_[-1][0]}", f"v{shape_[-1][1]}"}  # no count or offset
    for plan in (page, total):
        assert not any(v in plan.sql for v in values if isinstance(v, str))


def bound(plan):
    """The names a plan binds from the query's values (the rest are its own literals)."""
    names = plan.order if plan.order is not None else re.findall(r"%\((\w+)\)s", plan.sql)
    return set(names) - set(plan.constants)
