"""A new version of a resource changes only what its content changed: the search rows it no longer
matches go, the ones it newly matches come, the rest stay; its case links stay while it names the
same case and person. Searches and access see exactly the new version either way."""

import pytest
from sqlalchemy import select

from gateway.errors import Conflict
from gateway.fhir.indexing import index_entries
from gateway.fhir.search import parse_search
from gateway.store.schema import resource_cases, search_index
from tests.support.resources import patient, rfi_task


def write(services, resource: dict, resource_id: str, **options):
    return services.db.run_write(
        lambda conn: services.store.write(conn, resource, resource["resourceType"], resource_id, index_entries(resource), **options)
    )


def rows(services, resource_id: str) -> dict[tuple, list[int]]:
    """The resource's search rows: entry -> the row ids holding it."""
    def read(conn):
        found: dict[tuple, list[int]] = {}
        query = select(search_index).where(search_index.c.resource_id == resource_id).order_by(search_index.c.row_id)
        for r in conn.execute(query):
            found.setdefault((r.param, r.system, r.value, r.raw, r.lo, r.hi), []).append(r.row_id)
        return found

    return services.db.run_read(read)


def entries(resource: dict) -> list[tuple]:
    return sorted((e.param, e.system, e.value, e.raw, e.lo, e.hi) for e in index_entries(resource))


def found(services, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    query = parse_search(resource_type, params)
    return services.db.run_read(lambda conn: [v.resource_id for v in services.store.search(conn, query)[0]])


def cases_of(services, resource_id: str) -> set[str]:
    query = select(resource_cases.c.case_id).where(resource_cases.c.resource_id == resource_id)
    return set(services.db.run_read(lambda conn: conn.execute(query).scalars().all()))


def test_a_rewrite_replaces_only_the_search_rows_whose_entries_changed(services):
    first = patient(family="Nguyen", identifier="VP-1")
    first["identifier"].append({"system": "urn:qh:mrn", "value": "MRN-7"})
    write(services, first, "p1")
    before = rows(services, "p1")

    second = patient(family="Tran", identifier="VP-1")  # a new family name; the second identifier gone
    write(services, second, "p1")
    after = rows(services, "p1")

    assert sorted(e for e, ids in after.items() for _ in ids) == entries(second)
    unchanged = [e for e in after if e in before]
    assert unchanged and all(after[e] == before[e] for e in unchanged)  # the same rows, not deleted and written again
    assert found(services, "Patient", [("family", "Tran")]) == ["p1"]
    assert found(services, "Patient", [("family", "Nguyen")]) == []
    assert found(services, "Patient", [("identifier", "urn:qh:mrn|MRN-7")]) == []
    assert found(services, "Patient", [("identifier", "urn:vic-police:person|VP-1")]) == ["p1"]


def test_a_delete_leaves_no_search_rows(services):
    write(services, patient(), "p1")
    services.db.run_write(lambda conn: services.store.write(conn, None, "Patient", "p1"))

    assert rows(services, "p1") == {}
    assert found(services, "Patient", [("family", "Nguyen")]) == []


def test_a_rewrite_from_the_version_read_keeps_its_links_or_moves_them_with_its_case(services):
    v1 = write(services, rfi_task(focus="EpisodeOfCare/case-a"), "t1")
    v2 = write(services, rfi_task(focus="EpisodeOfCare/case-a", status="accepted"), "t1", base=v1)
    assert cases_of(services, "t1") == {"case-a"}

    write(services, rfi_task(focus="EpisodeOfCare/case-b", status="accepted"), "t1", base=v2)
    assert cases_of(services, "t1") == {"case-b"}
    assert found(services, "Task", [("status", "accepted")]) == ["t1"]


def test_a_rewrite_from_a_version_someone_else_has_replaced_fails(services):
    v1 = write(services, rfi_task(), "t1")
    write(services, rfi_task(status="accepted"), "t1", base=v1)

    with pytest.raises(Conflict, match="changed concurrently"):
        write(services, rfi_task(status="rejected"), "t1", base=v1)
    assert found(services, "Task", [("status", "rejected")]) == []
