"""The CRM schema as SQLAlchemy Core tables: the single source of column truth for queries.

The DDL itself (checks, defaults, triggers) lives in the Alembic migrations, written per dialect;
``tests/storage/test_schema.py`` checks that the migrated database and these tables agree.
Relationships (``Relation``) drive PostgREST-style embedding and the access rules' parent lookups.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from wexlot.crm.types import DateType, Flag, Money, TextList, Timestamp, UUIDText

metadata = MetaData()

STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
CLOSED_STAGES = ("won", "lost")
ROLES = ("admin", "manager", "rep")
VISIBILITIES = ("team", "private")
CONTACT_STATUSES = ("lead", "prospect", "customer", "churned")
ACTIVITY_TYPES = ("call", "meeting", "email", "task", "note")
INTERACTION_KINDS = ("email", "call", "meeting", "chat", "social", "other")
DIRECTIONS = ("inbound", "outbound")

# Columns every CRM table has and that only the database/server set.
SYSTEM_COLUMNS = ("id", "created_at", "updated_at", "version", "updated_by")
SERVER_MANAGED = frozenset({"created_at", "updated_at", "version", "updated_by"})


def _common() -> list[Column[object]]:
    return [
        Column("id", UUIDText(), primary_key=True),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        Column("version", BigInteger(), nullable=False),
        Column("updated_by", UUIDText(), ForeignKey("staff.id", name="fk_updated_by"), nullable=True),
    ]


def _fk(name: str, target: str) -> Column[object]:
    return Column(name, UUIDText(), ForeignKey(f"{target}.id"), nullable=True)


staff = Table(
    "staff",
    metadata,
    *_common(),
    Column("user_id", UUIDText(), unique=True),
    Column("full_name", Text(), nullable=False),
    Column("email", Text(), nullable=False, unique=True),
    Column("role", Text(), nullable=False),
    Column("title", Text()),
    Column("phone", Text()),
    Column("is_active", Flag(), nullable=False),
)

platforms = Table(
    "platforms",
    metadata,
    *_common(),
    Column("name", Text(), nullable=False, unique=True),
    Column("kind", Text()),
    Column("url", Text()),
    Column("is_active", Flag(), nullable=False),
)

companies = Table(
    "companies",
    metadata,
    *_common(),
    Column("name", Text(), nullable=False),
    Column("domain", Text()),
    Column("industry", Text()),
    Column("size", Text()),
    Column("website", Text()),
    Column("phone", Text()),
    Column("address", Text()),
    Column("notes", Text()),
    _fk("owner_id", "staff"),
    Column("visibility", Text(), nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    *_common(),
    Column("first_name", Text(), nullable=False),
    Column("last_name", Text()),
    Column("email", Text()),
    Column("phone", Text()),
    Column("title", Text()),
    _fk("company_id", "companies"),
    _fk("owner_id", "staff"),
    Column("status", Text(), nullable=False),
    Column("source", Text()),
    Column("tags", TextList(), nullable=False),
    Column("notes", Text()),
    Column("visibility", Text(), nullable=False),
)

deals = Table(
    "deals",
    metadata,
    *_common(),
    Column("title", Text(), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("currency", Text(), nullable=False),
    Column("stage", Text(), nullable=False),
    Column("probability", Integer(), nullable=False),
    Column("expected_close_date", DateType()),
    Column("closed_at", Timestamp()),
    Column("position", Float(), nullable=False),
    _fk("contact_id", "contacts"),
    _fk("company_id", "companies"),
    _fk("owner_id", "staff"),
    Column("visibility", Text(), nullable=False),
)

activities = Table(
    "activities",
    metadata,
    *_common(),
    Column("type", Text(), nullable=False),
    Column("subject", Text(), nullable=False),
    Column("description", Text()),
    Column("due_at", Timestamp()),
    Column("completed", Flag(), nullable=False),
    Column("completed_at", Timestamp()),
    _fk("contact_id", "contacts"),
    _fk("company_id", "companies"),
    _fk("deal_id", "deals"),
    _fk("assigned_to", "staff"),
    _fk("owner_id", "staff"),
)

interactions = Table(
    "interactions",
    metadata,
    *_common(),
    Column("contact_id", UUIDText(), ForeignKey("contacts.id"), nullable=False),
    _fk("platform_id", "platforms"),
    Column("kind", Text(), nullable=False),
    Column("direction", Text(), nullable=False),
    Column("summary", Text()),
    Column("occurred_at", Timestamp(), nullable=False),
    _fk("staff_id", "staff"),
)

CRM_TABLES: dict[str, Table] = {
    t.name: t for t in (staff, contacts, companies, deals, activities, interactions, platforms)
}
TABLE_NAMES = tuple(CRM_TABLES)


@dataclass(frozen=True)
class Relation:
    """A foreign key seen from ``table``: many-to-one when ``column`` is on ``table``, else one-to-many."""

    table: str
    column: str  # the FK column (on table for m2o, on target for o2m)
    target: str
    many_to_one: bool
    constraint: str  # PostgREST-style hint name: <fk table>_<column>_fkey


def relations(table: str) -> list[Relation]:
    """Every relationship usable for embedding from ``table`` (both directions)."""
    out: list[Relation] = []
    for name, tbl in CRM_TABLES.items():
        for fk in tbl.foreign_keys:
            src_col = fk.parent.name
            target = fk.column.table.name
            hint = f"{name}_{src_col}_fkey"
            if name == table:
                out.append(Relation(table, src_col, target, True, hint))
            if target == table:
                out.append(Relation(table, src_col, name, False, hint))
    return out


def unique_columns(table: Table) -> list[tuple[str, ...]]:
    """Column sets with a unique index (candidates for ``on_conflict``)."""
    sets: list[tuple[str, ...]] = [tuple(c.name for c in table.primary_key.columns)]
    sets += [(c.name,) for c in table.columns if c.unique]
    sets += [
        tuple(c.name for c in con.columns)
        for con in table.constraints
        if isinstance(con, ColumnCollectionConstraint) and con.__class__.__name__ == "UniqueConstraint"
    ]
    return sets
