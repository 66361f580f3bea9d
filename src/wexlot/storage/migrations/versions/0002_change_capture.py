"""Change capture: what broadcasts (the publication) and where captured changes are kept.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

* ``wexlot_changes`` is the ordered change history on both backends; its ``id`` is the change's
  **position** (monotonic), used by live events and by catch-up after a reconnect.
* PostgreSQL: the publication ``supabase_realtime`` (all 7 tables, ``REPLICA IDENTITY FULL`` so
  UPDATE/DELETE carry the whole old row). The logical-replication reader fills ``wexlot_changes``
  (unique per ``(commit_lsn, seq)``, so several nodes reading the same WAL store each change once).
* SQLite: ``wexlot_publication`` lists the published tables, and AFTER triggers append each change
  to ``wexlot_changes`` in the writer's own transaction — so the sqlite3 shell is captured too.
  Outside UPDATEs are re-stamped by the ``<table>_stamp`` trigger (0001) with a second statement;
  the true old row is parked in ``wexlot_pending_old`` first so the logged change has it, and only
  the re-stamped (version-changing) update is logged: one change per logical update.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("staff", "platforms", "companies", "contacts", "deals", "activities", "interactions")
COLUMNS = {
    "staff": ["user_id", "full_name", "email", "role", "title", "phone", "is_active"],
    "platforms": ["name", "kind", "url", "is_active"],
    "companies": ["name", "domain", "industry", "size", "website", "phone", "address", "notes", "owner_id",
                  "visibility"],
    "contacts": ["first_name", "last_name", "email", "phone", "title", "company_id", "owner_id", "status", "source",
                 "tags", "notes", "visibility"],
    "deals": ["title", "amount", "currency", "stage", "probability", "expected_close_date", "closed_at", "position",
              "contact_id", "company_id", "owner_id", "visibility"],
    "activities": ["type", "subject", "description", "due_at", "completed", "completed_at", "contact_id",
                   "company_id", "deal_id", "assigned_to", "owner_id"],
    "interactions": ["contact_id", "platform_id", "kind", "direction", "summary", "occurred_at", "staff_id"],
}  # fmt: skip
COMMON = ["id", "created_at", "updated_at", "version", "updated_by"]
# The exceptions of 0001's <table>_stamp trigger (its insert fix-ups are not outside updates).
STAMP_GUARD = {
    "deals": " AND NOT (NEW.version = 1 AND OLD.stage IS NEW.stage"
    " AND (OLD.closed_at IS NULL) = (OLD.stage IN ('won', 'lost'))"
    " AND NEW.closed_at IS (CASE WHEN NEW.stage IN ('won', 'lost') THEN NEW.created_at END))",
    "activities": " AND NOT (NEW.version = 1 AND OLD.completed IS NEW.completed"
    " AND (OLD.completed_at IS NULL) = (OLD.completed = 1)"
    " AND NEW.completed_at IS (CASE WHEN NEW.completed THEN NEW.created_at END))",
}
SQLITE_NOW = "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')"


def _json_object(table: str, alias: str, insert: bool = False) -> str:
    parts = []
    for col in COMMON + COLUMNS[table]:
        value = f"{alias}.{col}"
        if col == "tags":
            value = f"json({alias}.tags)"
        elif insert and table == "deals" and col == "closed_at":
            # Mirrors deals_closed_on_insert, whichever of the two triggers runs first.
            value = (f"CASE WHEN {alias}.stage NOT IN ('won', 'lost') THEN NULL WHEN {alias}.closed_at IS NULL "
                     f"THEN {alias}.created_at ELSE {alias}.closed_at END")  # fmt: skip
        elif insert and table == "activities" and col == "completed_at":
            value = (f"CASE WHEN NOT {alias}.completed THEN NULL WHEN {alias}.completed_at IS NULL "
                     f"THEN {alias}.created_at ELSE {alias}.completed_at END")  # fmt: skip
        parts.append(f"'{col}', {value}")
    return "json_object(" + ", ".join(parts) + ")"


def _published(table: str) -> str:
    return f"EXISTS (SELECT 1 FROM wexlot_publication WHERE table_name = '{table}')"


def _sqlite_capture(table: str) -> list[str]:
    # Only a row parked for exactly this update (same old version) stands in for OLD.
    pending = (f"(SELECT old_record FROM wexlot_pending_old WHERE table_name = '{table}' AND row_id = NEW.id "
               f"AND json_extract(old_record, '$.version') = OLD.version)")  # fmt: skip
    return [
        f"""CREATE TRIGGER {table}_capture_insert AFTER INSERT ON {table}
FOR EACH ROW WHEN {_published(table)}
BEGIN
  INSERT INTO wexlot_changes (table_name, type, record, old_record)
  VALUES ('{table}', 'INSERT', {_json_object(table, "NEW", insert=True)}, NULL);
END""",
        f"""CREATE TRIGGER {table}_capture_update AFTER UPDATE ON {table}
FOR EACH ROW WHEN NEW.version IS NOT OLD.version AND {_published(table)}
BEGIN
  INSERT INTO wexlot_changes (table_name, type, record, old_record)
  VALUES ('{table}', 'UPDATE', {_json_object(table, "NEW")}, coalesce({pending}, {_json_object(table, "OLD")}));
  DELETE FROM wexlot_pending_old WHERE table_name = '{table}' AND row_id = NEW.id;
END""",
        f"""CREATE TRIGGER {table}_capture_delete AFTER DELETE ON {table}
FOR EACH ROW WHEN {_published(table)}
BEGIN
  INSERT INTO wexlot_changes (table_name, type, record, old_record)
  VALUES ('{table}', 'DELETE', NULL, {_json_object(table, "OLD")});
END""",
        # Park the true old row before the stamp trigger (0001) re-updates an outside write; same
        # condition as that trigger, so a parked row is always consumed by the re-update.
        f"""CREATE TRIGGER {table}_capture_park_old BEFORE UPDATE ON {table}
FOR EACH ROW WHEN NEW.version IS OLD.version{STAMP_GUARD.get(table, "")} AND {_published(table)}
BEGIN
  INSERT OR REPLACE INTO wexlot_pending_old (table_name, row_id, old_record)
  VALUES ('{table}', OLD.id, {_json_object(table, "OLD")});
END""",
    ]


SQLITE = [
    f"""CREATE TABLE wexlot_changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('INSERT', 'UPDATE', 'DELETE')),
  record TEXT,
  old_record TEXT,
  committed_at TEXT NOT NULL DEFAULT {SQLITE_NOW}
)""",
    "CREATE INDEX ix_wexlot_changes_committed_at ON wexlot_changes (committed_at)",
    "CREATE TABLE wexlot_publication (table_name TEXT PRIMARY KEY NOT NULL)",
    """CREATE TABLE wexlot_pending_old (
  table_name TEXT NOT NULL,
  row_id TEXT NOT NULL,
  old_record TEXT NOT NULL,
  PRIMARY KEY (table_name, row_id)
)""",
    *(f"INSERT INTO wexlot_publication (table_name) VALUES ('{t}')" for t in TABLES),
]

POSTGRES = [
    """CREATE TABLE wexlot_changes (
  id bigserial PRIMARY KEY,
  commit_lsn bigint NOT NULL,
  seq integer NOT NULL,
  xid bigint,
  table_name text NOT NULL,
  type text NOT NULL CHECK (type IN ('INSERT', 'UPDATE', 'DELETE')),
  record jsonb,
  old_record jsonb,
  committed_at timestamptz NOT NULL,
  UNIQUE (commit_lsn, seq)
)""",
    "CREATE INDEX ix_wexlot_changes_committed_at ON wexlot_changes (committed_at)",
    *(f"ALTER TABLE {t} REPLICA IDENTITY FULL" for t in TABLES),
    """DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
    CREATE PUBLICATION supabase_realtime;
  END IF;
END
$$""",
    *(
        f"""DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'supabase_realtime'
                 AND schemaname = 'public' AND tablename = '{t}') THEN
    ALTER PUBLICATION supabase_realtime ADD TABLE public.{t};
  END IF;
END
$$"""
        for t in TABLES
    ),
]


def statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return list(POSTGRES)
    out = list(SQLITE)
    for table in TABLES:
        out += _sqlite_capture(table)
    return out


def upgrade() -> None:
    for stmt in statements(op.get_bind().dialect.name):
        op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP PUBLICATION IF EXISTS supabase_realtime")
        op.execute("DROP TABLE IF EXISTS wexlot_changes")
        return
    for table in TABLES:
        for suffix in ("insert", "update", "delete", "park_old"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_capture_{suffix}")
    for name in ("wexlot_changes", "wexlot_publication", "wexlot_pending_old"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
