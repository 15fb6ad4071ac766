"""FHIR dates as ranges: the precision of the text is the width of the range."""

import pytest

from gateway.fhir.dates import date_range, from_micros, instant_text, to_micros


def span(text):
    lo, hi = date_range(text)
    return from_micros(lo).isoformat(), from_micros(hi).isoformat()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026", ("2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")),
        ("2026-12", ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")),
        ("2026-02-28", ("2026-02-28T00:00:00+00:00", "2026-03-01T00:00:00+00:00")),
        ("2026-11-24T10:30", ("2026-11-24T10:30:00+00:00", "2026-11-24T10:31:00+00:00")),
        ("2026-11-24T10:30:15+10:00", ("2026-11-24T00:30:15+00:00", "2026-11-24T00:30:16+00:00")),
        ("2026-11-24T10:30:15.250Z", ("2026-11-24T10:30:15.250000+00:00", "2026-11-24T10:30:15.250001+00:00")),
    ],
)
def test_ranges(text, expected):
    assert span(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13", "2026-11-24T25:00", "26-11-24", ""])
def test_malformed_dates_are_refused(text):
    with pytest.raises(ValueError):
        date_range(text)


def test_instant_text_round_trips_through_the_index_range():
    us = to_micros(from_micros(1_790_000_000_123_456))
    assert date_range(instant_text(us)) == (us, us + 1)
