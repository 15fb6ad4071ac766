"""The SQL of a FHIR search, compiled once per query shape.

A search's SQL depends on its shape (resource type, parameters, match kinds, date prefixes, how
many values each has, sort, whether paging and visibility apply), not on its values. Building
the SQLAlchemy statement and its cache key for every search cost several times what the
database spends running it: a third of an RFI's handling, which reads a case's consents and
newest risk assessments by search. So a query is split into its shape, in which every value is
replaced by its position in a list, and that list of values; the shape's statement is built and
compiled once per dialect and run on the transaction's DBAPI cursor (gateway.store.prepared, as
the fixed statements are) with the values bound by name (v0, v1, ...).
"""

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, not_, or_, select

from gateway.fhir.search import DateMatch, ReferenceMatch, SearchQuery, StringMatch, TokenMatch
from gateway.fhir.indexing import MAX_INDEXED_CHARS
from gateway.fhir.search_parameters import DATE
from gateway.store import case_links
from gateway.store.prepared import Prepared
from gateway.store.schema import resource_versions as rv
from gateway.store.schema import resources as r
from gateway.store.schema import search_index as si

PLANS = 1024  # compiled shapes kept per process (a shape is a few hundred bytes of SQL)
# The columns of a stored version as every read takes them (gateway.store.resources._VersionRow).
VERSION_COLUMNS = (
    rv.c.resource_type, rv.c.resource_id, rv.c.version_id, rv.c.last_updated, rv.c.method, rv.c.key_id, rv.c.body, rv.c.holder,
)
# Token shapes: the system may be anything, or must be absent; else it is a value's position.
ANY_SYSTEM, NO_SYSTEM = "any", "absent"


def current_versions():
    """SELECT of VERSION_COLUMNS, each resource's current version only."""
    is_current = and_(
        r.c.resource_type == rv.c.resource_type, r.c.resource_id == rv.c.resource_id, r.c.version_id == rv.c.version_id
    )
    return select(*VERSION_COLUMNS).join(r, is_current)


def run(conn: Connection, query: SearchQuery, visible_to: str | None) -> tuple[list[tuple], int | None]:
    """The page of VERSION_COLUMNS rows `query` asks for, and the total when it asks for one.
    `visible_to`: only what that agency may see (gateway.store.case_links.visible_clause)."""
    shape, values = shape_of(query, visible_to)
    params = {_name(i): value for i, value in enumerate(values)}
    total = None
    if query.with_total:
        total = _plan(shape, "total").all(conn, params)[0][0]
    if query.count == 0:
        return [], total
    return _plan(shape, "page").all(conn, params), total


# -- a query's shape and values -------------------------------------------------------------------


class _Values(list):
    def slot(self, value: Any) -> int:
        """Keep `value`; its position, which the shape holds in its place."""
        self.append(value)
        return len(self) - 1


def shape_of(query: SearchQuery, visible_to: str | None) -> tuple[tuple, list]:
    """(shape, values): equal shapes compile to the same SQL, whatever their values."""
    values = _Values()
    criteria = tuple(_criterion_shape(c, values) for c in query.criteria)
    sort = tuple((p.name, p.index_name, p.type, descending) for p, descending in query.sort)
    visible = values.slot(visible_to) if visible_to is not None else None
    page = (values.slot(query.count), values.slot(query.offset))
    return (query.resource_type, criteria, sort, visible, page), values


def _criterion_shape(criterion, values: _Values) -> tuple:
    name = criterion.param.index_name
    if name == "_id":
        return ("_id", tuple(values.slot(m.code) for m in criterion.alternatives))
    if name == "_lastUpdated":
        return ("_lastUpdated", tuple(_date_shape(m, values) for m in criterion.alternatives))
    return (name, criterion.param.type == DATE, tuple(_match_shape(m, values) for m in criterion.alternatives))


def _match_shape(m, values: _Values) -> tuple:
    if isinstance(m, TokenMatch):
        system = ANY_SYSTEM if not m.system_given else values.slot(m.system) if m.system else NO_SYSTEM
        return ("token", values.slot(m.code) if m.code is not None else None, system)
    if isinstance(m, StringMatch):
        if m.mode == "exact":
            return ("raw", values.slot(m.value))
        pattern = _escape_like(m.value[:MAX_INDEXED_CHARS])
        return ("like", values.slot(f"%{pattern}%" if m.mode == "contains" else f"{pattern}%"))
    if isinstance(m, ReferenceMatch):
        if m.id_suffix is not None:
            return ("like", values.slot(f"%/{_escape_like(m.id_suffix)}"))
        return ("in", tuple(values.slot(v) for v in m.exact))
    if isinstance(m, DateMatch):
        return _date_shape(m, values)
    raise TypeError(f"unknown match {m!r}")


def _date_shape(m: DateMatch, values: _Values) -> tuple:
    return ("date", m.prefix, values.slot(m.lo), values.slot(m.hi))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- a shape's statement --------------------------------------------------------------------------


@lru_cache(maxsize=PLANS)
def _plan(shape: tuple, kind: str) -> Prepared:
    """The shape's statement, which Prepared compiles once per dialect."""
    return Prepared(_statement(shape, kind))


def _statement(shape: tuple, kind: str):
    resource_type, criteria, sort, visible, (count, offset) = shape
    where = [r.c.resource_type == resource_type, not_(r.c.deleted)]
    where += [_criterion(resource_type, c) for c in criteria]
    if visible is not None:
        where.append(case_links.visible_clause(r.c.resource_type, r.c.resource_id, _bind(visible)))
    if kind == "total":
        return select(func.count()).select_from(r).where(*where)
    return current_versions().where(*where).order_by(*_order(sort)).offset(_bind(offset)).limit(_bind(count))


def _name(position: int) -> str:
    return f"v{position}"


def _bind(position: int):
    return bindparam(_name(position))


def _criterion(resource_type: str, shape: tuple):
    if shape[0] == "_id":
        return r.c.resource_id.in_([_bind(v) for v in shape[1]])
    if shape[0] == "_lastUpdated":
        return or_(*(_date_clause(m, r.c.last_updated, r.c.last_updated + 1) for m in shape[1]))
    name, dated, alternatives = shape
    # IN (subquery) lets the (partial) index on the criterion find the few matching ids first;
    # the explicit IS NOT NULL term tells SQLite's planner the partial index applies.
    present = si.c.lo.is_not(None) if dated else si.c.value.is_not(None)
    matching = select(si.c.resource_id).where(
        si.c.resource_type == resource_type, si.c.param == name, present, or_(*(_match_clause(m) for m in alternatives))
    )
    return r.c.resource_id.in_(matching)


def _match_clause(shape: tuple):
    kind = shape[0]
    if kind == "token":
        _, code, system = shape
        clauses = [si.c.value == _bind(code)] if code is not None else []
        if system == NO_SYSTEM:
            clauses.append(si.c.system.is_(None))
        elif system != ANY_SYSTEM:
            clauses.append(si.c.system == _bind(system))
        return and_(*clauses)
    if kind == "raw":
        return si.c.raw == _bind(shape[1])
    if kind == "like":
        return si.c.value.like(_bind(shape[1]), escape="\\")
    if kind == "in":
        return si.c.value.in_([_bind(v) for v in shape[1]])
    return _date_clause(shape, si.c.lo, si.c.hi)


def _date_clause(shape: tuple, lo, hi):
    """FHIR date prefixes as comparisons of the target range [lo, hi) with the search range."""
    _, prefix, search_lo, search_hi = shape
    m_lo, m_hi = _bind(search_lo), _bind(search_hi)
    inside = and_(lo >= m_lo, hi <= m_hi)
    return {
        "eq": inside,
        "ne": not_(inside),
        "gt": hi > m_hi,
        "lt": lo < m_lo,
        "ge": or_(hi > m_hi, inside),
        "le": or_(lo < m_lo, inside),
        "sa": lo >= m_hi,
        "eb": hi <= m_lo,
        "ap": and_(lo < m_hi, hi > m_lo),
    }[prefix]


def _order(sort: tuple) -> list:
    order = []
    for name, index_name, param_type, descending in sort:
        if name == "_lastUpdated":
            column = r.c.last_updated
        elif name == "_id":
            column = r.c.resource_id
        else:
            target = si.c.lo if param_type == DATE else si.c.value
            column = (
                select(func.min(target))
                .where(si.c.resource_type == r.c.resource_type, si.c.resource_id == r.c.resource_id, si.c.param == index_name)
                .scalar_subquery()
            )
        order.append(column.desc() if descending else column.asc())
    # a stable tie-break makes paging deterministic
    return order + [r.c.last_updated.asc(), r.c.resource_id.asc()]
