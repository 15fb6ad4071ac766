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


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-13", "2026-11-24T25:00", "26-11-24", "", "2026-02-29", "2026-11-24T24:00", "2026-11-24T10:60",
             "2026-11-24T10:30:60Z", "2026-11-24T10:30:00+24:00"],
)
def test_malformed_dates_are_refused(text):
    with pytest.raises(ValueError):
        date_range(text)


END_OF_9999 = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z in microseconds, past what datetime holds


@pytest.mark.parametrize(
    "text,width_us",
    [("9999", 365 * 86_400_000_000), ("9999-12", 31 * 86_400_000_000), ("9999-12-31", 86_400_000_000),
     ("9999-12-31T23:59:59Z", 1_000_000)],
)
def test_the_last_day_of_9999_is_a_range_like_any_other(text, width_us):
    # "9999-12-31" is how many systems say "no end": it must index, not overflow
    assert date_range(text) == (END_OF_9999 - width_us, END_OF_9999)


def test_offsets_and_fractions_are_exact():
    assert date_range("2026-11-24T10:30:15.1234567-05:30") == (
        to_micros(from_micros(0).replace(year=2026, month=11, day=24, hour=16, minute=0, second=15, microsecond=123456)),
        to_micros(from_micros(0).replace(year=2026, month=11, day=24, hour=16, minute=0, second=15, microsecond=123457)),
    )
    assert date_range("1969-12-31") == (-86_400_000_000, 0)
    assert date_range("2024-02") == (to_micros(from_micros(0).replace(year=2024, month=2)), to_micros(from_micros(0).replace(year=2024, month=3)))


def test_instant_text_round_trips_through_the_index_range():
    us = to_micros(from_micros(1_790_000_000_123_456))
    assert date_range(instant_text(us)) == (us, us + 1)
