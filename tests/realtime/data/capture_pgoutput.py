"""Capture real pgoutput (protocol v1) messages for the decoder tests: ``python capture_pgoutput.py``.

Starts a throwaway cluster (tests/support/pg_cluster.py), migrates a database, creates a pgoutput
slot and runs the writes in STEPS one by one. After each step it reads the slot with
``pg_logical_slot_get_binary_changes`` and appends the raw messages to ``pgoutput_v1.hex``:

    # step <name>                 one line per step, before its messages
    <lsn> <hex payload>           one line per message, in stream order

The capture session runs with ``TimeZone = 'Asia/Kolkata'`` (timestamps leave the server as
``+05:30``) and replays one step under a replication origin, so Origin messages appear too. The
values are fixed so the tests can assert on them; the notes text is random hex (incompressible, so
it is stored out of line in TOAST) from a fixed seed.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import psycopg2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for support.pg_cluster

from support.pg_cluster import PgCluster  # noqa: E402

OUT = HERE / "pgoutput_v1.hex"
SLOT = "capture"

STAFF = "11111111-1111-4111-8111-111111111111"
COMPANY = "22222222-2222-4222-8222-222222222222"
CONTACT = "33333333-3333-4333-8333-333333333333"
DEAL = "44444444-4444-4444-8444-444444444444"
ACTIVITY = "55555555-5555-4555-8555-555555555555"
BIG = "66666666-6666-4666-8666-666666666666"
CREATED = "2026-11-25 13:44:36.123+00"
NOTES = random.Random(20261125).randbytes(5 * 1024).hex()  # 10 KB of text that does not compress
TAGS = ["vip", "b c", "with,comma", 'quote"d', "back\\slash", "NULL", "", "{braces}", "ünïcode"]

STEPS: list[tuple[str, list[str]]] = [
    ("insert_staff", [
        "INSERT INTO staff (id, full_name, email, role, created_at) "
        f"VALUES ('{STAFF}', 'Ann \"The Boss\" O''Neil', 'ann@example.com', 'admin', '{CREATED}')",
    ]),
    ("insert_company", [
        "INSERT INTO companies (id, name, owner_id, created_at) "
        f"VALUES ('{COMPANY}', 'Acme, Inc.', '{STAFF}', '{CREATED}')",
    ]),
    ("insert_contact_tags", [
        "INSERT INTO contacts (id, first_name, last_name, company_id, tags, notes, created_at) "
        f"VALUES ('{CONTACT}', 'Cid', NULL, '{COMPANY}', %(tags)s, NULL, '{CREATED}')",
    ]),
    ("insert_deal", [
        "INSERT INTO deals (id, title, amount, stage, probability, expected_close_date, position, contact_id, "
        f"company_id, created_at) VALUES ('{DEAL}', 'Big', 125000.50, 'won', 60, '2026-12-31', 1.5, '{CONTACT}', "
        f"'{COMPANY}', '{CREATED}')",
    ]),
    ("multi_statement", [
        "INSERT INTO activities (id, type, subject, due_at, deal_id, created_at) "
        f"VALUES ('{ACTIVITY}', 'call', 'Call Cid', '2026-12-01 09:30:00+01', '{DEAL}', '{CREATED}')",
        f"UPDATE deals SET amount = 99.99, stage = 'proposal', probability = 40 WHERE id = '{DEAL}'",
        f"UPDATE contacts SET status = 'customer' WHERE id = '{CONTACT}'",
        f"DELETE FROM activities WHERE id = '{ACTIVITY}'",
    ]),
    ("insert_toasted", [
        f"INSERT INTO contacts (id, first_name, notes, created_at) VALUES ('{BIG}', 'Big', %(notes)s, '{CREATED}')",
    ]),
    ("update_toast_unchanged", [f"UPDATE contacts SET status = 'prospect', tags = ARRAY['x'] WHERE id = '{BIG}'"]),
    ("update_toast_changed", [f"UPDATE contacts SET notes = 'short now' WHERE id = '{BIG}'"]),
    ("delete_contact", [f"DELETE FROM contacts WHERE id = '{BIG}'"]),
    ("extra_types", [
        "CREATE TYPE mood AS ENUM ('ok', 'meh')",
        "CREATE TABLE extras (id int PRIMARY KEY, m mood, nums int[], grid int[], words text[], ts timestamp, "
        "d date, f4 real, f8 double precision, n numeric, j jsonb, b bytea, u uuid, small smallint, big bigint)",
        "ALTER TABLE extras REPLICA IDENTITY FULL",
        "ALTER PUBLICATION supabase_realtime ADD TABLE extras",
        "INSERT INTO extras VALUES (1, 'meh', '{1,NULL,-3}', '{{1,2},{3,4}}', ARRAY['a', NULL, 'NULL', 'x y'], "
        "'2026-11-25 13:44:36.5', '2026-02-28', 1.25, 'Infinity', 'NaN', '{\"k\": [1, true, null]}', '\\x00ff10', "
        "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', -32768, 9223372036854775807)",
        "INSERT INTO extras (id) VALUES (2)",
    ]),
    ("truncate", ["TRUNCATE extras"]),
    ("logical_messages", [
        "SELECT pg_logical_emit_message(false, 'wexlot', 'not transactional')",
        "SELECT pg_logical_emit_message(true, 'wexlot', 'in a transaction')",
        f"UPDATE companies SET industry = 'tools' WHERE id = '{COMPANY}'",
    ]),
    ("with_origin", [f"UPDATE companies SET size = '10-50' WHERE id = '{COMPANY}'"]),
    ("unpublished_only", ["CREATE TABLE scratch (x int)", "INSERT INTO scratch VALUES (1)"]),
]  # fmt: skip


def capture(cluster: PgCluster) -> list[str]:
    from wexlot.storage.migrate import upgrade

    url = cluster.create_database("capture")
    upgrade(url)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET TimeZone = 'Asia/Kolkata'")
    # The test cluster commits asynchronously, and decoding only reads WAL that is flushed.
    cur.execute("SET synchronous_commit = on")
    cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (SLOT,))
    cur.execute("SELECT pg_replication_origin_create('capture_origin')")
    version = cluster.psql("SHOW server_version")[0][0]
    lines = [f"# pgoutput proto_version 1 from PostgreSQL {version}, written by capture_pgoutput.py"]
    for name, statements in STEPS:
        if name == "with_origin":
            cur.execute("SELECT pg_replication_origin_session_setup('capture_origin')")
        cur.execute("BEGIN")
        for sql in statements:
            cur.execute(sql, {"tags": TAGS, "notes": NOTES})
        cur.execute("COMMIT")
        if name == "with_origin":
            cur.execute("SELECT pg_replication_origin_session_reset()")
        cur.execute(
            "SELECT lsn, data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
            "'publication_names', 'supabase_realtime', 'messages', 'true')",
            (SLOT,),
        )
        lines.append(f"# step {name}")
        lines += [f"{lsn} {bytes(data).hex()}" for lsn, data in cur.fetchall()]
    cur.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    conn.close()
    return lines


def main() -> None:
    with PgCluster() as cluster:
        lines = capture(cluster)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines to {OUT}")  # noqa: T201


if __name__ == "__main__":
    main()
