"""FHIR dates, dateTimes and instants as half-open ranges of UTC microseconds.

A FHIR date is imprecise by design ("2026" is the whole year), so both the index and the search
compare ranges: a value is stored as [lo, hi) and a search prefix is a comparison of ranges.
"""

import re
import time
from datetime import date, datetime, timedelta, timezone

_PATTERN = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DAY = EPOCH.toordinal()
_DAY_US = 86_400_000_000
MIN_US = -(2**62)
MAX_US = 2**62


def now_micros() -> int:
    """Now, in UTC microseconds: how the gateway stores every moment it records."""
    return time.time_ns() // 1000


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def instant_text(us: int) -> str:
    """FHIR instant with microseconds, in UTC, as stored in meta.lastUpdated."""
    return from_micros(us).isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" off; faster than strftime


def date_range(text: str) -> tuple[int, int]:
    """[lo, hi) in UTC microseconds for a FHIR date/dateTime/instant; ValueError if malformed.

    In whole numbers from the day's ordinal rather than through datetime: half the time, and the
    range of the last day of year 9999 (a common "no end") ends at 10000-01-01, which datetime
    cannot hold."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a FHIR date, dateTime or instant")
    y, m, d, hh, mm, ss, fraction, tz = match.group("y", "m", "d", "H", "M", "S", "f", "tz")
    year, month = int(y), int(m or 1)
    hour, minute, second = int(hh or 0), int(mm or 0), int(ss or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"'{text}' names a time of day that does not exist")
    day = (date(year, month, int(d or 1)).toordinal() - _EPOCH_DAY) * _DAY_US  # ValueError for a day that does not exist
    lo = day + ((hour * 60 + minute) * 60 + second) * 1_000_000 + int((fraction or "0")[:6].ljust(6, "0")) - _offset_us(tz)
    if fraction:
        return lo, lo + 1
    for given, width in ((ss, 1_000_000), (mm, 60_000_000), (hh, 3_600_000_000), (d, _DAY_US)):
        if given:
            return lo, lo + width
    # a month or a year: up to the first day after it
    following = date(year, month + 1, 1).toordinal() if m and month < 12 else date(year, 12, 31).toordinal() + 1
    return lo, lo - day + (following - _EPOCH_DAY) * _DAY_US


def _offset_us(tz: str | None) -> int:
    if tz is None or tz == "Z":
        return 0  # FHIR: a date without a zone is local; UTC is the gateway's convention
    minutes = int(tz[1:3]) * 60 + int(tz[4:6])
    if minutes >= 24 * 60:
        raise ValueError(f"'{tz}' is not a time zone offset")
    return (minutes if tz[0] == "+" else -minutes) * 60_000_000
