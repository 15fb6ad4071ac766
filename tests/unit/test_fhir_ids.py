"""Ids the gateway mints sort in the order they were minted (what keeps new rows at the end of
every index keyed by id), never repeat, and are valid FHIR ids."""

import re

from gateway.fhir.ids import new_id

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def test_ids_minted_one_after_another_sort_in_that_order():
    ids = [new_id() for _ in range(20_000)]  # many within each millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_minted_id_is_a_fhir_id():
    assert FHIR_ID.fullmatch(new_id())
