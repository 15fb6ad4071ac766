"""Readable tables of a case for the terminal: what `gateway demo` prints after each step."""

from datetime import datetime

from gateway.domain.case import MultiAgencyCase
from gateway.domain.summary import summarise
from gateway.domain.vocabulary import AgencyType, RiskDeterminedBy


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)] if rows else [len(h) for h in headers]
    line = "  ".join("-" * w for w in widths).rstrip()
    render = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([render(headers), line, *(render(r) for r in rows)])


def case_report(case: MultiAgencyCase, agency_types: dict[str, AgencyType], now: datetime) -> str:
    summary = summarise(case, agency_types, now)
    parts = [f"Case {case.id}: {case.status.name.lower()}, lead agency {summary.lead_agency}"]
    current = [
        [by.display, found.level.display if found else "-", found.on.isoformat() if found else "-"]
        for by, found in summary.current_risk.items()
    ]
    parts.append(table(["risk as determined by", "level", "on"], current))
    history = [[d.on.isoformat(), d.determined_by.value, d.level.value] for d in summary.risk_history]
    parts.append(table(["date", "determined by", "risk"], history))
    if case.actions:
        rows = [
            [a.id, a.responsible_agency_id, a.due.isoformat(), a.status.value, "OVERDUE" if a in summary.overdue_actions else ""]
            for a in case.actions
        ]
        parts.append(table(["safety-plan action", "who", "by when", "status", ""], rows))
    if case.rfis:
        rows = [
            [r.id, r.requester_agency_id, r.target_agency_id, ",".join(c.value for c in r.categories), r.status.value,
             "OVERDUE" if r in summary.overdue_rfis else ""]
            for r in case.rfis
        ]
        parts.append(table(["RFI", "from", "to", "categories", "status", ""], rows))
    if summary.warnings:
        parts.append("\n".join(f"warning: {w}" for w in summary.warnings))
    return "\n\n".join(parts)


def current_multi_agency_risk(case: MultiAgencyCase) -> str:
    found = case.current_risk(RiskDeterminedBy.MULTI_AGENCY)
    return found.level.value if found else "-"
