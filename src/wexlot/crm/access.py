"""Who may read and write which CRM rows — the only place the access rules live.

A rule is a small boolean expression over a row (``Rule``). Each rule is written once and then
either compiled to a SQL predicate (REST queries: rows the caller may not read are simply absent)
or evaluated on a row plus the parent rows it references (realtime: one in-process check per change
and subscriber, no query). ``tests/crm/test_access_agreement.py`` checks the two agree on every
table and role.

The rules:

* ``service_role`` bypasses everything; ``anon`` and inactive staff read and write nothing.
* Active staff read every ``team`` company/contact/deal; a ``private`` one only its owner, managers
  and admins. Activities and interactions are readable iff every company/contact/deal they
  reference is readable. Staff and platforms are readable by all active staff.
* Reps create records owned by themselves and update/delete those they own (activities: or are
  assigned to; interactions: their ``staff_id``). Managers and admins write any CRM record; only
  admins write ``staff`` and ``platforms``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, Table, and_, exists, false, not_, or_, select, true

from wexlot.crm.tables import CRM_TABLES

Row = Mapping[str, Any]
ParentLookup = Callable[[str, Any], Row | None]
"""(table, id) → that parent row, or None when it does not exist."""

ApiRole = Literal["anon", "authenticated", "service_role"]


@dataclass(frozen=True)
class Principal:
    """The caller, as far as access rules care: API role plus, when signed in, its staff row."""

    role: ApiRole
    user_id: str | None = None
    staff_id: str | None = None
    staff_role: str | None = None  # admin | manager | rep
    active: bool = False
    email: str | None = None
    session_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.role == "service_role"

    @property
    def is_staff(self) -> bool:
        return self.role == "authenticated" and self.active and self.staff_id is not None

    @property
    def is_elevated(self) -> bool:
        """Managers and admins see and edit every CRM record."""
        return self.is_staff and self.staff_role in ("admin", "manager")

    @property
    def is_admin(self) -> bool:
        return self.is_staff and self.staff_role == "admin"


ANON = Principal(role="anon")
SERVICE = Principal(role="service_role")

# --- the rule language --------------------------------------------------------------------------


class Rule(ABC):
    """One boolean expression over a row, with two readings that must agree (see the module docstring)."""

    @abstractmethod
    def sql(self, table: Table, principal: Principal) -> ColumnElement[bool]:
        """The rule as a SQL predicate on ``table`` (which may be an alias)."""

    @abstractmethod
    def test(self, row: Row, principal: Principal, parents: ParentLookup) -> bool:
        """The rule evaluated on ``row``, looking up referenced parents with ``parents``."""


@dataclass(frozen=True)
class Const(Rule):
    value: bool

    def sql(self, table: Table, principal: Principal) -> ColumnElement[bool]:
        return true() if self.value else false()

    def test(self, row: Row, principal: Principal, parents: ParentLookup) -> bool:
        return self.value


@dataclass(frozen=True)
class Equals(Rule):
    """``column = value``, NULL-safe: a NULL column never matches (two-valued, unlike SQL)."""

    column: str
    value: Any

    def sql(self, table: Table, principal: Principal) -> ColumnElement[bool]:
        col = table.c[self.column]
        if self.value is None:
            return false()
        return and_(col.is_not(None), col == self.value)

    def test(self, row: Row, principal: Principal, parents: ParentLookup) -> bool:
        return self.value is not None and row.get(self.column) == self.value


@dataclass(frozen=True)
class AnyOf(Rule):
    rules: tuple[Rule, ...]

    def sql(self, table: Table, principal: Principal) -> ColumnElement[bool]:
        return or_(false(), *(r.sql(table, principal) for r in self.rules))

    def test(self, row: Row, principal: Principal, parents: ParentLookup) -> bool:
        return any(r.test(row, principal, parents) for r in self.rules)


@dataclass(frozen=True)
class AllOf(Rule):
    rules: tuple[Rule, ...]

    def sql(self, table: Table, principal: Principal) -> ColumnElement[bool]:
        return and_(true(), *(r.sql(table, principal) for r in self.rules))

    def test(self, row: Row, principal: Principal, parents: ParentLookup) -> bool:
        return all(r.test(row, principal, parents) for r in self.rules)


@dataclass(frozen=True)
class ParentReadable(Rule):
    """The row's ``column`` is NULL, points nowhere, or points at a ``parent`` row the caller may read."""

    column: str
    parent: str

    def sql(self, table: Table, principal: Principal) -> ColumnElement[bool]:
        parent = CRM_TABLES[self.parent].alias(f"p_{self.parent}")
        hidden = and_(
            parent.c.id == table.c[self.column],
            not_(read_rule(principal, self.parent).sql(parent, principal)),
        )  # type: ignore[arg-type]
        return not_(exists(select(parent.c.id).where(hidden)))

    def test(self, row: Row, principal: Principal, parents: ParentLookup) -> bool:
        ref = row.get(self.column)
        if ref is None:
            return True
        parent_row = parents(self.parent, ref)
        return parent_row is None or read_rule(principal, self.parent).test(parent_row, principal, parents)


ALLOW, DENY = Const(True), Const(False)

OWNED_TABLES = ("companies", "contacts", "deals")  # have visibility + owner_id
PARENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "activities": (("company_id", "companies"), ("contact_id", "contacts"), ("deal_id", "deals")),
    "interactions": (("contact_id", "contacts"),),
}
ADMIN_ONLY_WRITES = ("staff", "platforms")
# Columns naming the staff member a rep must be to change a row, per table.
RESPONSIBLE: dict[str, tuple[str, ...]] = {
    "companies": ("owner_id",),
    "contacts": ("owner_id",),
    "deals": ("owner_id",),
    "activities": ("owner_id", "assigned_to"),
    "interactions": ("staff_id",),
}
# Column a new row's owner goes in when the creator leaves it out.
OWNER_COLUMN = {
    "companies": "owner_id",
    "contacts": "owner_id",
    "deals": "owner_id",
    "activities": "owner_id",
    "interactions": "staff_id",
}


def read_rule(principal: Principal, table: str) -> Rule:
    if principal.is_service:
        return ALLOW
    if not principal.is_staff:
        return DENY
    if principal.is_elevated or table in ADMIN_ONLY_WRITES:
        return ALLOW
    if table in OWNED_TABLES:
        return AnyOf((Equals("visibility", "team"), Equals("owner_id", principal.staff_id)))
    return AllOf(tuple(ParentReadable(col, parent) for col, parent in PARENTS[table]))


def write_rule(principal: Principal, table: str) -> Rule:
    """Rows the caller may update or delete; also what a row it inserts or updates must satisfy."""
    if principal.is_service:
        return ALLOW
    if not may_write_table(principal, table):
        return DENY
    if principal.is_elevated:
        return ALLOW
    mine = AnyOf(tuple(Equals(col, principal.staff_id) for col in RESPONSIBLE[table]))
    return AllOf((read_rule(principal, table), mine))


def may_write_table(principal: Principal, table: str) -> bool:
    """Table-level permission (PostgreSQL's GRANT): False means 42501, not an empty result."""
    if principal.is_service:
        return True
    if not principal.is_staff:
        return False
    return principal.is_admin if table in ADMIN_ONLY_WRITES else True


# Built once per (principal, table): the expression is immutable and SQLAlchemy binds it anew each time.
@lru_cache(maxsize=4096)
def read_predicate(principal: Principal, table: str) -> ColumnElement[bool]:
    return read_rule(principal, table).sql(CRM_TABLES[table], principal)


@lru_cache(maxsize=4096)
def write_predicate(principal: Principal, table: str) -> ColumnElement[bool]:
    return write_rule(principal, table).sql(CRM_TABLES[table], principal)


def can_read_row(principal: Principal, table: str, row: Row, parents: ParentLookup) -> bool:
    return read_rule(principal, table).test(row, principal, parents)


def can_write_row(principal: Principal, table: str, row: Row, parents: ParentLookup) -> bool:
    return write_rule(principal, table).test(row, principal, parents)
