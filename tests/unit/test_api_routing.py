"""The FHIR lane's routing and the request's own base URL, checked against Starlette's answers."""

import pytest
from starlette.requests import Request

from gateway.api import fhir
from gateway.api.deps import _request_root


def scope(headers=(), server=("gateway.example", 443), scheme="https", root_path=""):
    return {"type": "http", "scheme": scheme, "server": server, "root_path": root_path, "path": "/fhir/Patient/p1",
            "query_string": b"", "headers": list(headers), "method": "GET"}


@pytest.mark.parametrize("case", [
    scope([(b"host", b"gw.example:8443")]),
    scope([(b"host", b"gw.example")], scheme="http"),
    scope(),
    scope(server=("10.0.0.5", 8080), scheme="http"),
    scope(server=("10.0.0.5", 80), scheme="http"),
    scope([(b"host", b"gw.example")], root_path="/gateway/"),
    scope(server=None),
])
def test_the_request_root_is_what_starlette_calls_the_base_url(case):
    assert _request_root(case) == str(Request(case).base_url).rstrip("/")


def route_of(method, path):
    lane = fhir.FhirLane(app=None)
    found = lane._route_for(method, path)
    return None if found is None else (found[0].__name__, found[1])


def test_fixed_segments_win_over_the_ids_they_look_like():
    assert route_of("GET", "/fhir/metadata") == ("metadata", {})
    assert route_of("GET", "/fhir/Task/_history") == ("type_history", {"resource_type": "Task"})
    assert route_of("POST", "/fhir/Task/_search") == ("search_post", {"resource_type": "Task"})
    assert route_of("GET", "/fhir/Patient/p1/$everything") == ("everything", {"resource_id": "p1"})
    assert route_of("GET", "/fhir/Task/t1/_history/2") == (
        "vread", {"resource_type": "Task", "resource_id": "t1", "version_id": "2"})


def test_the_method_chooses_among_routes_of_one_path():
    assert route_of("GET", "/fhir/Task/t1") == ("read", {"resource_type": "Task", "resource_id": "t1"})
    assert route_of("PUT", "/fhir/Task/t1")[0] == "update"
    assert route_of("DELETE", "/fhir/Task/t1")[0] == "delete"
    assert route_of("HEAD", "/fhir/Task/t1")[0] == "read"  # as Starlette: GET routes answer HEAD


def test_a_path_it_serves_with_another_method_is_refused_not_passed_on():
    assert route_of("PATCH", "/fhir/Task/t1")[0] == "refuse"


def test_paths_it_does_not_serve_are_left_to_the_app():
    assert route_of("GET", "/fhir/Task/t1/_history/2/more") is None
    assert route_of("GET", "/api/v1/cases/c1") is None


def test_the_lane_matches_below_the_root_path_as_starlette_does():
    from starlette._utils import get_route_path  # the router's own rule, to compare with

    for path, root in [("/gw/fhir/Patient/p1", "/gw"), ("/fhir/Patient/p1", ""), ("/gwx/fhir/metadata", "/gw"), ("/gw", "/gw")]:
        scope = {"path": path, "root_path": root}
        assert fhir._route_path(scope) == get_route_path(scope)
