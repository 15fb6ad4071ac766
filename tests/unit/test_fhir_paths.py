"""values_at: every value at a path in a resource, as index entries and profile rules read them."""

from gateway.fhir.indexing import values_at

TASK = {
    "resourceType": "Task",
    "owner": {"reference": "Organization/qps"},
    "input": [
        {"type": {"coding": [{"system": "s", "code": "a"}, {"system": "s", "code": "b"}]}, "valueString": "first"},
        {"type": {"coding": [{"system": "s", "code": "c"}]}},
    ],
}


def test_a_single_element_is_one_value():
    assert values_at(TASK, ("owner",)) == [{"reference": "Organization/qps"}]
    assert values_at(TASK, ("owner", "reference")) == ["Organization/qps"]


def test_arrays_on_the_way_are_flattened_in_document_order():
    assert [c["code"] for c in values_at(TASK, ("input", "type", "coding"))] == ["a", "b", "c"]
    assert values_at(TASK, ("input", "valueString")) == ["first"]  # the second input has none


def test_an_absent_element_has_no_values():
    assert values_at(TASK, ("focus",)) == []
    assert values_at(TASK, ("owner", "display")) == []
    assert values_at({"resourceType": "Task", "note": None}, ("note", "text")) == []


def test_arrays_within_arrays_are_flattened_too():
    assert values_at({"x": [[{"y": 1}], [{"y": 2}, {"y": [3, 4]}]]}, ("x", "y")) == [1, 2, 3, 4]


def test_a_value_found_is_not_the_resource_own_array():
    found = values_at(TASK, ("input",))
    found.clear()
    assert len(TASK["input"]) == 2
