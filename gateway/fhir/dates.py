"""FHIR dates, dateTimes and instants as half-open ranges of UTC microseconds.

A FHIR date is imprecise by design ("2026" is the whole year), so both the index and the search
compare ranges: a value is stored as [lo, hi) and a search prefix is a comparison of ranges.
"""

import re
from datetime import datetime, timedelta, timezone

_PATTERN = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_US = -(2**62)
MAX_US = 2**62


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def instant_text(us: int) -> str:
    """FHIR instant with microseconds, in UTC, as stored in meta.lastUpdated."""
    return from_micros(us).isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" off; faster than strftime


def date_range(text: str) -> tuple[int, int]:
    """[lo, hi) in UTC microseconds for a FHIR date/dateTime/instant; ValueError if malformed."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a FHIR date, dateTime or instant")
    g = match.groupdict()
    tz = _zone(g["tz"])
    year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
    hour, minute, second = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
    micros = int((g["f"] or "0")[:6].ljust(6, "0"))
    start = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    if g["f"]:
        step = timedelta(microseconds=1)
    elif g["S"]:
        step = timedelta(seconds=1)
    elif g["M"]:
        step = timedelta(minutes=1)
    elif g["H"]:
        step = timedelta(hours=1)
    elif g["d"]:
        step = timedelta(days=1)
    elif g["m"]:
        return to_micros(start), to_micros(_add_months(start, 1))
    else:
        return to_micros(start), to_micros(start.replace(year=year + 1))
    return to_micros(start), to_micros(start + step)


def _zone(tz: str | None) -> timezone:
    if tz is None or tz == "Z":
        return timezone.utc  # FHIR: a date without a zone is local; UTC is the gateway's convention
    sign = 1 if tz[0] == "+" else -1
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    return moment.replace(year=moment.year + month // 12, month=month % 12 + 1)
