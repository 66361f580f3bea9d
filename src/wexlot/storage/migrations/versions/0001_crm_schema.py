"""CRM schema, auth tables, defaults and triggers on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Both backends get the same columns, checks, delete rules and bookkeeping:

* ``id``, ``created_at``, ``updated_at``, ``version`` come from column defaults and triggers, so a
  bare INSERT from psql or the sqlite3 shell gets them too.
* PostgreSQL: one BEFORE trigger per table sets version/updated_at/updated_by (from the transaction
  setting ``wexlot.actor``, NULL for outside writers) and the closed_at/completed_at rules. A BEFORE
  trigger edits the row in place, so no second UPDATE ever happens.
* SQLite cannot edit NEW. The server therefore writes version+1, updated_at, updated_by and the
  closed_at/completed_at rules in its own UPDATE statements; the AFTER trigger only fires for outside
  writers (``WHEN NEW.version = OLD.version``) and applies the same bookkeeping once. A server write
  is thus exactly one row update.
* Staff that anything references are deactivated instead of deleted (a BEFORE DELETE trigger).
"""

from __future__ import annotations

import re

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("staff", "platforms", "companies", "contacts", "deals", "activities", "interactions")

# (column, postgres type, sqlite type, extra) — extra holds NOT NULL / DEFAULT / CHECK per dialect.
# "{enum:...}" and friends are expanded below.
COLUMNS: dict[str, list[tuple[str, str, str, str]]] = {
    "staff": [
        (
            "user_id",
            "uuid UNIQUE REFERENCES auth.users(id) ON DELETE SET NULL",
            "TEXT UNIQUE REFERENCES auth_users(id) ON DELETE SET NULL",
            "",
        ),
        ("full_name", "text", "TEXT", "NOT NULL CHECK (length(full_name) > 0)"),
        ("email", "text", "TEXT", "NOT NULL UNIQUE CHECK (length(email) > 2)"),
        ("role", "text", "TEXT", "NOT NULL DEFAULT 'rep' {enum:role:admin,manager,rep}"),
        ("title", "text", "TEXT", ""),
        ("phone", "text", "TEXT", ""),
        ("is_active", "boolean", "INTEGER", "NOT NULL DEFAULT {true} {bool:is_active}"),
    ],
    "platforms": [
        ("name", "text", "TEXT", "NOT NULL UNIQUE CHECK (length(name) > 0)"),
        ("kind", "text", "TEXT", ""),
        ("url", "text", "TEXT", ""),
        ("is_active", "boolean", "INTEGER", "NOT NULL DEFAULT {true} {bool:is_active}"),
    ],
    "companies": [
        ("name", "text", "TEXT", "NOT NULL CHECK (length(name) > 0)"),
        ("domain", "text", "TEXT", ""),
        ("industry", "text", "TEXT", ""),
        ("size", "text", "TEXT", ""),
        ("website", "text", "TEXT", ""),
        ("phone", "text", "TEXT", ""),
        ("address", "text", "TEXT", ""),
        ("notes", "text", "TEXT", ""),
        ("owner_id", "{fk:staff}", "{fk:staff}", ""),
        ("visibility", "text", "TEXT", "NOT NULL DEFAULT 'team' {enum:visibility:team,private}"),
    ],
    "contacts": [
        ("first_name", "text", "TEXT", "NOT NULL CHECK (length(first_name) > 0)"),
        ("last_name", "text", "TEXT", ""),
        ("email", "text", "TEXT", ""),
        ("phone", "text", "TEXT", ""),
        ("title", "text", "TEXT", ""),
        ("company_id", "{fk:companies:SET NULL}", "{fk:companies:SET NULL}", ""),
        ("owner_id", "{fk:staff}", "{fk:staff}", ""),
        ("status", "text", "TEXT", "NOT NULL DEFAULT 'lead' {enum:status:lead,prospect,customer,churned}"),
        ("source", "text", "TEXT", ""),
        ("tags", "text[]", "TEXT", "NOT NULL DEFAULT {empty_list} {list:tags}"),
        ("notes", "text", "TEXT", ""),
        ("visibility", "text", "TEXT", "NOT NULL DEFAULT 'team' {enum:visibility:team,private}"),
    ],
    "deals": [
        ("title", "text", "TEXT", "NOT NULL CHECK (length(title) > 0)"),
        ("amount", "numeric(14,2)", "INTEGER", "NOT NULL DEFAULT 0 {money:amount}"),
        (
            "currency",
            "text",
            "TEXT",
            "NOT NULL DEFAULT 'USD' {currency}",
        ),
        (
            "stage",
            "text",
            "TEXT",
            "NOT NULL DEFAULT 'lead' {enum:stage:lead,qualified,proposal,negotiation,won,lost}",
        ),
        ("probability", "integer", "INTEGER", "NOT NULL DEFAULT 10 CHECK (probability BETWEEN 0 AND 100)"),
        ("expected_close_date", "date", "TEXT", ""),
        ("closed_at", "timestamptz", "TEXT", ""),
        ("position", "double precision", "REAL", "NOT NULL DEFAULT 0 {finite:position}"),
        ("contact_id", "{fk:contacts:SET NULL}", "{fk:contacts:SET NULL}", ""),
        ("company_id", "{fk:companies:SET NULL}", "{fk:companies:SET NULL}", ""),
        ("owner_id", "{fk:staff}", "{fk:staff}", ""),
        ("visibility", "text", "TEXT", "NOT NULL DEFAULT 'team' {enum:visibility:team,private}"),
    ],
    "activities": [
        ("type", "text", "TEXT", "NOT NULL DEFAULT 'task' {enum:type:call,meeting,email,task,note}"),
        ("subject", "text", "TEXT", "NOT NULL CHECK (length(subject) > 0)"),
        ("description", "text", "TEXT", ""),
        ("due_at", "timestamptz", "TEXT", ""),
        ("completed", "boolean", "INTEGER", "NOT NULL DEFAULT {false} {bool:completed}"),
        ("completed_at", "timestamptz", "TEXT", ""),
        ("contact_id", "{fk:contacts:SET NULL}", "{fk:contacts:SET NULL}", ""),
        ("company_id", "{fk:companies:SET NULL}", "{fk:companies:SET NULL}", ""),
        ("deal_id", "{fk:deals:SET NULL}", "{fk:deals:SET NULL}", ""),
        ("assigned_to", "{fk:staff}", "{fk:staff}", ""),
        ("owner_id", "{fk:staff}", "{fk:staff}", ""),
    ],
    "interactions": [
        (
            "contact_id",
            "uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE",
            "TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE",
            "",
        ),
        ("platform_id", "{fk:platforms:SET NULL}", "{fk:platforms:SET NULL}", ""),
        ("kind", "text", "TEXT", "NOT NULL DEFAULT 'other' {enum:kind:email,call,meeting,chat,social,other}"),
        ("direction", "text", "TEXT", "NOT NULL DEFAULT 'outbound' {enum:direction:inbound,outbound}"),
        ("summary", "text", "TEXT", ""),
        ("occurred_at", "timestamptz", "TEXT", "NOT NULL DEFAULT {now}"),
        ("staff_id", "{fk:staff}", "{fk:staff}", ""),
    ],
}

INDEXES: dict[str, list[str]] = {
    "staff": ["full_name", "role"],
    "platforms": [],
    "companies": ["owner_id", "name", "created_at", "updated_at"],
    "contacts": [
        "company_id",
        "owner_id",
        "last_name, first_name",
        "email",
        "status",
        "created_at",
        "updated_at",
    ],
    "deals": [
        "contact_id",
        "company_id",
        "owner_id",
        "stage, position",
        "created_at",
        "updated_at",
        "expected_close_date",
        "closed_at",
    ],
    "activities": [
        "contact_id",
        "company_id",
        "deal_id",
        "assigned_to",
        "owner_id",
        "due_at",
        "completed, due_at",
        "created_at",
        "updated_at",
    ],
    "interactions": ["contact_id", "platform_id", "staff_id", "occurred_at", "created_at", "updated_at"],
}
# updated_by references staff on every table; index it too (FK rule).
STAFF_REFERENCES = [
    ("companies", "owner_id"),
    ("contacts", "owner_id"),
    ("deals", "owner_id"),
    ("activities", "owner_id"),
    ("activities", "assigned_to"),
    ("interactions", "staff_id"),
] + [(t, "updated_by") for t in TABLES]

SQLITE_UUID = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
)
# Microsecond-width text so that server-written and trigger-written stamps sort together.
SQLITE_NOW = "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')"


def _token(token: str, pg: bool) -> str:
    kind, _, arg = token.partition(":")
    if kind == "enum":
        col, _, values = arg.partition(":")
        listed = ", ".join(f"'{v}'" for v in values.split(","))
        return f"CHECK ({col} IN ({listed}))"
    if kind == "fk":
        target, _, action = arg.partition(":")
        typ = "uuid" if pg else "TEXT"
        return f"{typ} REFERENCES {target}(id)" + (f" ON DELETE {action}" if action else "")
    if kind == "bool":
        return "" if pg else f"CHECK ({arg} IN (0, 1))"
    if kind == "list":
        return "" if pg else f"CHECK (json_valid({arg}) AND json_type({arg}) = 'array')"
    if kind == "money":
        if pg:
            return f"CHECK ({arg} > -1e12 AND {arg} < 1e12)"
        return f"CHECK (typeof({arg}) = 'integer' AND abs({arg}) < 100000000000000)"
    if kind == "finite":  # JSON has no Infinity/NaN
        if pg:
            return f"CHECK ({arg} > '-Infinity' AND {arg} < 'Infinity')"
        return f"CHECK (abs({arg}) <= 1.7976931348623157e308)"
    if kind == "currency":
        return (
            "CHECK (currency ~ '^[A-Z]{3}$')"
            if pg
            else "CHECK (length(currency) = 3 AND currency GLOB '[A-Z][A-Z][A-Z]')"
        )
    simple = {
        "true": ("true", "1"),
        "false": ("false", "0"),
        "empty_list": ("'{}'", "'[]'"),
        "now": ("now()", SQLITE_NOW),
    }
    return simple[kind][0 if pg else 1]


def _expand(text: str, dialect: str) -> str:
    """Replace the ``{kind:arg}`` placeholders of the column table with dialect SQL."""
    return re.sub(r"\{([a-z_]+(?::[^{}]*)?)\}", lambda m: _token(m.group(1), dialect == "postgresql"), text)


def _create_table(table: str, dialect: str) -> str:
    pg = dialect == "postgresql"
    lines = [
        "id uuid PRIMARY KEY DEFAULT gen_random_uuid()"
        if pg
        else f"id TEXT PRIMARY KEY NOT NULL DEFAULT {SQLITE_UUID} CHECK (length(id) = 36)",
        f"created_at {'timestamptz' if pg else 'TEXT'} NOT NULL DEFAULT {'now()' if pg else SQLITE_NOW}",
        f"updated_at {'timestamptz' if pg else 'TEXT'} NOT NULL DEFAULT {'now()' if pg else SQLITE_NOW}",
        "version bigint NOT NULL DEFAULT 1" if pg else "version INTEGER NOT NULL DEFAULT 1",
    ]
    for name, pg_type, sqlite_type, extra in COLUMNS[table]:
        typ = _expand(pg_type if pg else sqlite_type, dialect)
        lines.append(f"{name} {typ} {_expand(extra, dialect)}".rstrip())
    ref = "uuid" if pg else "TEXT"
    lines.append(f"updated_by {ref} REFERENCES staff(id)")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {table} (\n  {body}\n)"


def _indexes(table: str) -> list[str]:
    cols = [*list(INDEXES[table]), "updated_by"]
    out = []
    for spec in cols:
        name = f"ix_{table}_" + spec.replace(", ", "_")
        out.append(f"CREATE INDEX {name} ON {table} ({spec})")
    return out


AUTH_PG = [
    "CREATE SCHEMA IF NOT EXISTS auth",
    """CREATE TABLE auth.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL UNIQUE,
  encrypted_password text,
  role text NOT NULL DEFAULT 'authenticated',
  aud text NOT NULL DEFAULT 'authenticated',
  app_metadata jsonb NOT NULL DEFAULT '{}',
  user_metadata jsonb NOT NULL DEFAULT '{}',
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  banned_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)""",
    """CREATE TABLE auth.sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  user_agent text,
  ip text
)""",
    "CREATE INDEX ix_auth_sessions_user_id ON auth.sessions (user_id)",
    """CREATE TABLE auth.refresh_tokens (
  id bigserial PRIMARY KEY,
  token_hash text NOT NULL UNIQUE,
  user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  session_id uuid NOT NULL REFERENCES auth.sessions(id) ON DELETE CASCADE,
  parent_hash text,
  revoked boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)""",
    "CREATE INDEX ix_auth_refresh_tokens_session_id ON auth.refresh_tokens (session_id)",
    "CREATE INDEX ix_auth_refresh_tokens_parent_hash ON auth.refresh_tokens (parent_hash)",
    "CREATE INDEX ix_auth_refresh_tokens_user_id ON auth.refresh_tokens (user_id)",
]

AUTH_SQLITE = [
    f"""CREATE TABLE auth_users (
  id TEXT PRIMARY KEY NOT NULL DEFAULT {SQLITE_UUID},
  email TEXT NOT NULL UNIQUE,
  encrypted_password TEXT,
  role TEXT NOT NULL DEFAULT 'authenticated',
  aud TEXT NOT NULL DEFAULT 'authenticated',
  app_metadata TEXT NOT NULL DEFAULT '{{}}',
  user_metadata TEXT NOT NULL DEFAULT '{{}}',
  email_confirmed_at TEXT,
  last_sign_in_at TEXT,
  banned_until TEXT,
  created_at TEXT NOT NULL DEFAULT {SQLITE_NOW},
  updated_at TEXT NOT NULL DEFAULT {SQLITE_NOW}
)""",
    f"""CREATE TABLE auth_sessions (
  id TEXT PRIMARY KEY NOT NULL DEFAULT {SQLITE_UUID},
  user_id TEXT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL DEFAULT {SQLITE_NOW},
  updated_at TEXT NOT NULL DEFAULT {SQLITE_NOW},
  user_agent TEXT,
  ip TEXT
)""",
    "CREATE INDEX ix_auth_sessions_user_id ON auth_sessions (user_id)",
    f"""CREATE TABLE auth_refresh_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  token_hash TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
  session_id TEXT NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
  parent_hash TEXT,
  revoked INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT {SQLITE_NOW},
  updated_at TEXT NOT NULL DEFAULT {SQLITE_NOW}
)""",
    "CREATE INDEX ix_auth_refresh_tokens_session_id ON auth_refresh_tokens (session_id)",
    "CREATE INDEX ix_auth_refresh_tokens_parent_hash ON auth_refresh_tokens (parent_hash)",
    "CREATE INDEX ix_auth_refresh_tokens_user_id ON auth_refresh_tokens (user_id)",
]

PG_FUNCTIONS = [
    """CREATE FUNCTION wexlot_actor() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('wexlot.actor', true), '')::uuid
$$""",
    # One bookkeeping function for every table; table-specific rules keyed on TG_TABLE_NAME.
    """CREATE FUNCTION wexlot_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.version := 1;
    NEW.created_at := coalesce(NEW.created_at, now());
    NEW.updated_at := NEW.created_at;
  ELSE
    NEW.id := OLD.id;
    NEW.created_at := OLD.created_at;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
  END IF;
  NEW.updated_by := wexlot_actor();
  IF TG_TABLE_NAME = 'deals' THEN
    IF NEW.stage NOT IN ('won', 'lost') THEN
      NEW.closed_at := NULL;
    ELSIF TG_OP = 'INSERT' THEN
      NEW.closed_at := coalesce(NEW.closed_at, now());
    ELSIF OLD.stage IS DISTINCT FROM NEW.stage OR NEW.closed_at IS NULL THEN
      NEW.closed_at := now();
    END IF;
  ELSIF TG_TABLE_NAME = 'activities' THEN
    IF NOT NEW.completed THEN
      NEW.completed_at := NULL;
    ELSIF TG_OP = 'INSERT' THEN
      NEW.completed_at := coalesce(NEW.completed_at, now());
    ELSIF NOT OLD.completed OR NEW.completed_at IS NULL THEN
      NEW.completed_at := now();
    END IF;
  END IF;
  RETURN NEW;
END
$$""",
    """CREATE FUNCTION wexlot_staff_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM companies WHERE owner_id = OLD.id OR updated_by = OLD.id)
     OR EXISTS (SELECT 1 FROM contacts WHERE owner_id = OLD.id OR updated_by = OLD.id)
     OR EXISTS (SELECT 1 FROM deals WHERE owner_id = OLD.id OR updated_by = OLD.id)
     OR EXISTS (SELECT 1 FROM activities WHERE owner_id = OLD.id OR assigned_to = OLD.id
                OR updated_by = OLD.id)
     OR EXISTS (SELECT 1 FROM interactions WHERE staff_id = OLD.id OR updated_by = OLD.id)
     OR EXISTS (SELECT 1 FROM platforms WHERE updated_by = OLD.id)
     OR EXISTS (SELECT 1 FROM staff WHERE updated_by = OLD.id AND id <> OLD.id) THEN
    UPDATE staff SET is_active = false WHERE id = OLD.id AND is_active;
    RETURN NULL;
  END IF;
  RETURN OLD;
END
$$""",
]


def _sqlite_staff_refs(alias: str) -> str:
    return " OR ".join(
        f"EXISTS (SELECT 1 FROM {t} WHERE {c} = {alias}.id{' AND id <> ' + alias + '.id' if t == 'staff' else ''})"
        for t, c in STAFF_REFERENCES
    )


# The stamp trigger skips only the insert fix-ups below (the one update that can meet a row that
# breaks the closed_at/completed_at rule); every real outside update is re-stamped.
STAMP_GUARD = {
    "deals": " AND NOT (NEW.version = 1 AND OLD.stage IS NEW.stage"
    " AND (OLD.closed_at IS NULL) = (OLD.stage IN ('won', 'lost'))"
    " AND NEW.closed_at IS (CASE WHEN NEW.stage IN ('won', 'lost') THEN NEW.created_at END))",
    "activities": " AND NOT (NEW.version = 1 AND OLD.completed IS NEW.completed"
    " AND (OLD.completed_at IS NULL) = (OLD.completed = 1)"
    " AND NEW.completed_at IS (CASE WHEN NEW.completed THEN NEW.created_at END))",
}


def _sqlite_triggers(table: str) -> list[str]:
    extra = ""
    if table == "deals":
        extra = (
            ", closed_at = CASE WHEN NEW.stage NOT IN ('won', 'lost') THEN NULL"
            f" WHEN OLD.stage IS NOT NEW.stage OR NEW.closed_at IS NULL THEN {SQLITE_NOW}"
            " ELSE NEW.closed_at END"
        )
    elif table == "activities":
        extra = (
            ", completed_at = CASE WHEN NOT NEW.completed THEN NULL"
            f" WHEN NOT OLD.completed OR NEW.completed_at IS NULL THEN {SQLITE_NOW}"
            " ELSE NEW.completed_at END"
        )
    # Outside writers only: the server bumps version itself, so this never fires for its writes.
    # The insert fix-up below writes closed_at/completed_at = created_at on version 1; skip that one.
    guard = STAMP_GUARD.get(table, "")
    out = [
        f"""CREATE TRIGGER {table}_stamp AFTER UPDATE ON {table}
FOR EACH ROW WHEN NEW.version = OLD.version{guard}
BEGIN
  UPDATE {table} SET version = OLD.version + 1, updated_at = {SQLITE_NOW}, updated_by = NULL,
    id = OLD.id, created_at = OLD.created_at{extra}
  WHERE id = NEW.id;
END"""
    ]
    if table == "deals":
        out.append(
            """CREATE TRIGGER deals_closed_on_insert AFTER INSERT ON deals
FOR EACH ROW WHEN (NEW.stage IN ('won', 'lost')) = (NEW.closed_at IS NULL)
BEGIN
  UPDATE deals SET closed_at = CASE WHEN NEW.stage IN ('won', 'lost') THEN NEW.created_at END WHERE id = NEW.id;
END"""
        )
    if table == "activities":
        out.append(
            """CREATE TRIGGER activities_completed_on_insert AFTER INSERT ON activities
FOR EACH ROW WHEN (NEW.completed = 1) = (NEW.completed_at IS NULL)
BEGIN
  UPDATE activities SET completed_at = CASE WHEN NEW.completed THEN NEW.created_at END WHERE id = NEW.id;
END"""
        )
    if table == "staff":
        out.append(
            f"""CREATE TRIGGER staff_deactivate_instead_of_delete BEFORE DELETE ON staff
FOR EACH ROW WHEN {_sqlite_staff_refs("OLD")}
BEGIN
  UPDATE staff SET is_active = 0, version = version + 1, updated_at = {SQLITE_NOW}, updated_by = NULL
  WHERE id = OLD.id AND is_active;
  SELECT RAISE(IGNORE);
END"""
        )
    return out


def statements(dialect: str) -> list[str]:
    """Every DDL statement of this revision for ``dialect`` (also used by the schema test)."""
    pg = dialect == "postgresql"
    out = list(AUTH_PG if pg else AUTH_SQLITE)
    if pg:
        out += PG_FUNCTIONS
    for table in TABLES:
        out.append(_create_table(table, dialect))
        out += _indexes(table)
    for table, column in STAFF_REFERENCES:
        if column != "updated_by" and not any(column == spec for spec in INDEXES[table]):
            out.append(f"CREATE INDEX ix_{table}_{column} ON {table} ({column})")
    for table in TABLES:
        if pg:
            out.append(
                f"CREATE TRIGGER {table}_stamp BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION wexlot_stamp()"
            )
        else:
            out += _sqlite_triggers(table)
    if pg:
        out.append(
            "CREATE TRIGGER staff_deactivate_instead_of_delete BEFORE DELETE ON staff "
            "FOR EACH ROW EXECUTE FUNCTION wexlot_staff_delete()"
        )
    return out


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for stmt in statements(dialect):
        op.execute(stmt)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}{' CASCADE' if pg else ''}")
    if pg:
        op.execute("DROP FUNCTION IF EXISTS wexlot_stamp, wexlot_staff_delete, wexlot_actor")
        op.execute("DROP SCHEMA IF EXISTS auth CASCADE")
    else:
        for t in ("auth_refresh_tokens", "auth_sessions", "auth_users"):
            op.execute(f"DROP TABLE IF EXISTS {t}")
