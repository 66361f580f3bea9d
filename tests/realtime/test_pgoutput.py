"""The pgoutput v1 decoder on real captured bytes (data/pgoutput_v1.hex, made by data/capture_pgoutput.py).

The capture ran with ``TimeZone = 'Asia/Kolkata'``, so every timestamp left the server as ``+05:30``
and must come out of the decoder as the same instant in UTC.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from wexlot.crm.tables import CRM_TABLES
from wexlot.realtime.sources.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    PgOutputError,
    Relation,
    RelationColumn,
    RowChange,
    Transaction,
    TransactionAssembler,
    Truncate,
    Type,
    Update,
    decode_message,
    parse_array,
    value_from_pg_text,
)

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("capture_pgoutput", DATA / "capture_pgoutput.py")
assert _spec is not None and _spec.loader is not None
capture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capture)

CREATED = dt.datetime(2026, 11, 25, 13, 44, 36, 123000, tzinfo=dt.UTC)


def load_steps() -> dict[str, list[tuple[int, bytes]]]:
    steps: dict[str, list[tuple[int, bytes]]] = {}
    current: list[tuple[int, bytes]] | None = None
    for line in (DATA / "pgoutput_v1.hex").read_text().splitlines():
        if line.startswith("# step "):
            current = steps.setdefault(line.removeprefix("# step "), [])
        elif line and not line.startswith("#"):
            assert current is not None
            lsn, payload = line.split()
            high, low = lsn.split("/")
            current.append(((int(high, 16) << 32) | int(low, 16), bytes.fromhex(payload)))
    return steps


STEPS = load_steps()


def messages(step: str) -> list[Any]:
    return [decode_message(payload) for _, payload in STEPS[step]]


def transactions(*steps: str) -> list[Transaction]:
    """Feed the steps through one assembler (one session), as the stream would."""
    assembler = TransactionAssembler()
    out = []
    for step in steps:
        for _, payload in STEPS[step]:
            txn = assembler.feed(payload)
            if txn is not None:
                out.append(txn)
    assert not assembler.in_transaction
    return out


def only_change(step: str) -> RowChange:
    [txn] = transactions(step)
    [change] = txn.changes
    return change


# --- messages --------------------------------------------------------------------------------------


def test_every_captured_message_decodes() -> None:
    kinds = {type(decode_message(p)).__name__ for step in STEPS.values() for _, p in step}
    assert kinds == {
        "Begin", "Commit", "Relation", "Type", "Insert", "Update", "Delete", "Truncate", "LogicalMessage", "Origin",
    }  # fmt: skip
    assert STEPS["unpublished_only"] == []  # PostgreSQL 15 sends nothing for a transaction it filters out


def test_begin_and_commit_carry_the_lsns_and_the_commit_time() -> None:
    lines = STEPS["insert_staff"]
    begin, commit = decode_message(lines[0][1]), decode_message(lines[-1][1])
    assert isinstance(begin, Begin) and isinstance(commit, Commit)
    assert begin.final_lsn == commit.commit_lsn < commit.end_lsn
    assert commit.end_lsn == lines[-1][0]  # the commit message is sent at the end of the commit record
    assert begin.commit_time == commit.commit_time
    assert begin.commit_time.tzinfo is dt.UTC and begin.commit_time.year >= 2025
    assert begin.xid > 0 and commit.flags == 0


def test_relation_lists_the_columns_with_full_replica_identity() -> None:
    rel = messages("insert_staff")[1]
    assert isinstance(rel, Relation)
    assert (rel.namespace, rel.name, rel.replica_identity) == ("public", "staff", "f")
    assert {c.name for c in rel.columns} == {c.name for c in CRM_TABLES["staff"].columns}
    assert all(c.is_key for c in rel.columns)  # REPLICA IDENTITY FULL: every column identifies the row
    types = {c.name: c.type_oid for c in rel.columns}
    assert types == {
        "id": 2950, "created_at": 1184, "updated_at": 1184, "version": 20, "updated_by": 2950, "user_id": 2950,
        "full_name": 25, "email": 25, "role": 25, "title": 25, "phone": 25, "is_active": 16,
    }  # fmt: skip


def test_type_message_precedes_a_relation_with_a_custom_type() -> None:
    typ, rel = messages("extra_types")[1:3]
    assert isinstance(typ, Type) and (typ.namespace, typ.name) == ("public", "mood")
    assert isinstance(rel, Relation) and {c.name: c.type_oid for c in rel.columns}["m"] == typ.oid


def test_update_and_delete_carry_the_whole_old_row() -> None:
    msgs = messages("multi_statement")
    update = next(m for m in msgs if isinstance(m, Update))
    delete = next(m for m in msgs if isinstance(m, Delete))
    assert update.old_kind == "O" and update.old is not None and len(update.old) == len(update.new)
    assert delete.old_kind == "O" and None not in delete.old[:4]


def test_unchanged_toast_is_sent_as_u_and_the_old_row_has_it() -> None:
    [update] = [m for m in messages("update_toast_unchanged") if isinstance(m, Update)]
    rel = next(m for m in messages("update_toast_unchanged") if isinstance(m, Relation))
    notes = [c.name for c in rel.columns].index("notes")
    assert update.new[notes] is UNCHANGED
    assert update.old is not None and update.old[notes] == capture.NOTES


def test_truncate_origin_and_logical_messages() -> None:
    truncate = next(m for m in messages("truncate") if isinstance(m, Truncate))
    rel = next(m for m in messages("truncate") if isinstance(m, Relation))
    assert truncate.relation_oids == (rel.oid,) and not truncate.cascade and not truncate.restart_identity
    outside, _begin, inside = messages("logical_messages")[:3]
    assert outside == LogicalMessage(False, outside.lsn, "wexlot", b"not transactional")
    assert inside == LogicalMessage(True, inside.lsn, "wexlot", b"in a transaction")
    origin = messages("with_origin")[1]
    assert isinstance(origin, Origin) and origin.name == "capture_origin"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"B\x00\x00",  # truncated
        b"Z",  # unknown message type
        bytes.fromhex("430000000000019cd16000000000019cd190000304192c952838") + b"\x00",  # a trailing byte
        b"I\x00\x00\x40\x45X\x00\x00",  # no 'N' before the new tuple
        b"I\x00\x00\x40\x45N\x00\x01x",  # unknown tuple value kind
        b"D\x00\x00\x40\x45N\x00\x00",  # a delete needs 'K' or 'O'
        b"R\x00\x00\x40\x45public",  # unterminated string
    ],
)
def test_malformed_messages_raise(payload: bytes) -> None:
    with pytest.raises(PgOutputError):
        decode_message(payload)


def test_binary_tuple_values_are_kept_as_bytes() -> None:
    payload = b"I" + struct.pack("!I", 7) + b"N" + struct.pack("!h", 3) + b"b" + struct.pack("!i", 2) + b"\x00\x01nu"
    assert decode_message(payload) == Insert(7, (b"\x00\x01", None, UNCHANGED))


# --- rows and values -------------------------------------------------------------------------------


def test_insert_gives_python_typed_values() -> None:
    staff = only_change("insert_staff")
    assert staff.kind == "INSERT" and staff.old is None and staff.missing == ()
    assert staff.new == {
        "id": capture.STAFF, "created_at": CREATED, "updated_at": CREATED, "version": 1, "updated_by": None,
        "user_id": None, "full_name": "Ann \"The Boss\" O'Neil", "email": "ann@example.com", "role": "admin",
        "title": None, "phone": None, "is_active": True,
    }  # fmt: skip
    assert staff.new["created_at"].tzinfo is dt.UTC


def test_text_arrays_with_quotes_commas_and_escapes() -> None:
    contact = only_change("insert_contact_tags")
    assert contact.new is not None
    assert contact.new["tags"] == capture.TAGS
    assert contact.new["last_name"] is None and contact.new["notes"] is None and contact.new["status"] == "lead"


def test_numeric_date_float_and_trigger_set_timestamps() -> None:
    deal = only_change("insert_deal").new
    assert deal is not None
    assert deal["amount"] == Decimal("125000.50") and str(deal["amount"]) == "125000.50"
    assert deal["probability"] == 60 and deal["position"] == 1.5
    assert deal["expected_close_date"] == dt.date(2026, 12, 31)
    assert isinstance(deal["closed_at"], dt.datetime) and deal["closed_at"].tzinfo is dt.UTC  # set by the trigger


def test_multi_statement_transaction_is_one_transaction_in_statement_order() -> None:
    [txn] = transactions("multi_statement")
    assert [(c.relation.name, c.kind) for c in txn.changes] == [
        ("activities", "INSERT"), ("deals", "UPDATE"), ("contacts", "UPDATE"), ("activities", "DELETE"),
    ]  # fmt: skip
    insert, deal, contact, delete = txn.changes
    assert insert.new is not None and insert.new["due_at"] == dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    assert deal.old is not None and deal.new is not None
    assert (deal.old["amount"], deal.old["stage"], deal.old["version"]) == (Decimal("125000.50"), "won", 1)
    assert (deal.new["amount"], deal.new["stage"], deal.new["version"]) == (Decimal("99.99"), "proposal", 2)
    assert deal.old["closed_at"] is not None and deal.new["closed_at"] is None
    assert set(deal.old) == set(deal.new) == {c.name for c in CRM_TABLES["deals"].columns}
    assert contact.old is not None and contact.old["tags"] == capture.TAGS
    assert delete.new is None and delete.old == insert.new


def test_unchanged_toasted_notes_are_filled_from_the_old_row() -> None:
    inserted, unchanged, changed, deleted = (
        only_change(s) for s in ("insert_toasted", "update_toast_unchanged", "update_toast_changed", "delete_contact")
    )
    assert inserted.new is not None and inserted.new["notes"] == capture.NOTES and len(capture.NOTES) == 10240
    assert unchanged.new is not None and unchanged.old is not None
    assert unchanged.new["notes"] == capture.NOTES and unchanged.missing == ()
    assert unchanged.old == inserted.new
    assert (unchanged.old["status"], unchanged.new["status"], unchanged.new["tags"]) == ("lead", "prospect", ["x"])
    assert changed.new is not None and changed.old is not None
    assert changed.new["notes"] == "short now" and changed.old["notes"] == capture.NOTES
    assert deleted.old == changed.new


def test_unchanged_toast_without_an_old_row_is_reported_missing() -> None:
    assembler = TransactionAssembler()
    rel = Relation(1, "public", "t", "d", (RelationColumn(1, "id", 23, -1), RelationColumn(0, "notes", 25, -1)))
    assembler.feed(rel)
    change = assembler.row_change(Update(1, None, None, ("5", UNCHANGED)))
    assert change.new == {"id": 5} and change.old is None and change.missing == ("notes",)
    key_only = assembler.row_change(Delete(1, "K", ("5", None)))
    assert key_only.old == {"id": 5}


def test_other_types_enum_arrays_json_bytea_and_specials() -> None:
    [txn] = transactions("extra_types")
    first, second = txn.changes
    assert first.new == {
        "id": 1, "m": "meh", "nums": [1, None, -3], "grid": [[1, 2], [3, 4]], "words": ["a", None, "NULL", "x y"],
        "ts": dt.datetime(2026, 11, 25, 13, 44, 36, 500000), "d": dt.date(2026, 2, 28), "f4": 1.25,
        "f8": math.inf, "n": first.new["n"], "j": {"k": [1, True, None]}, "b": b"\x00\xff\x10",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "small": -32768, "big": 2**63 - 1,
    }  # fmt: skip
    assert first.new["n"].is_nan()
    assert second.new is not None and second.new["id"] == 2 and set(second.new.values()) == {2, None}


def test_truncate_origin_and_messages_in_assembled_transactions() -> None:
    truncated, messaged, originated = transactions("truncate", "logical_messages", "with_origin")
    assert [r.name for r in truncated.truncated] == ["extras"] and truncated.changes == []
    assert [m.content for m in messaged.messages] == [b"in a transaction"]  # not the non-transactional one
    assert messaged.origin is None and originated.origin == "capture_origin"
    assert [c.kind for c in originated.changes] == ["UPDATE"]


def test_assembler_rejects_out_of_order_streams() -> None:
    assembler = TransactionAssembler()
    insert = STEPS["insert_staff"][2][1]
    with pytest.raises(PgOutputError, match="outside a transaction"):
        assembler.feed(decode_message(STEPS["insert_staff"][-1][1]))  # a Commit with no Begin
    assembler.feed(STEPS["insert_staff"][0][1])
    with pytest.raises(PgOutputError, match="before its Relation"):
        assembler.feed(insert)
    with pytest.raises(PgOutputError, match="inside"):
        assembler.feed(STEPS["insert_staff"][0][1])


@pytest.mark.parametrize(
    ("oid", "text", "expected"),
    [
        (16, "t", True),
        (16, "f", False),
        (1700, "-0.10", Decimal("-0.10")),
        (1184, "2026-11-25 13:44:36.123+00", CREATED),
        (1184, "2026-11-25 19:14:36.123+05:30", CREATED),
        (1184, "2026-11-25 13:44:36+00", CREATED.replace(microsecond=0)),
        (1184, "infinity", dt.datetime.max.replace(tzinfo=dt.UTC)),
        (1114, "-infinity", dt.datetime.min),
        (1082, "infinity", dt.date.max),
        (1082, "0044-03-15 BC", "0044-03-15 BC"),
        (1082, "2026-11-25", dt.date(2026, 11, 25)),
        (2950, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        (23, "-7", -7),
        (701, "1e+300", 1e300),
        (701, "-Infinity", -math.inf),
        (25, "{not an array}", "{not an array}"),
        (1043, "varchar", "varchar"),
        (1009, "{}", []),
        (1009, '{a,"b c",NULL,"NULL","",x}', ["a", "b c", None, "NULL", "", "x"]),
        (1009, r'{"q\"uote","back\\slash","com,ma","{br}"}', ['q"uote', "back\\slash", "com,ma", "{br}"]),
        (1009, "[0:1]={a,b}", ["a", "b"]),
        (1007, "{{1,NULL},{3,4}}", [[1, None], [3, 4]]),
        (1185, '{"2026-11-25 13:44:36.123+00"}', [CREATED]),
        (1231, "{1.50,NaN}", [Decimal("1.50"), Decimal("NaN")]),
        (17, "\\x00ff", b"\x00\xff"),
        (3802, '{"a": 1}', {"a": 1}),
    ],
)
def test_value_from_pg_text(oid: int, text: str, expected: Any) -> None:
    value = value_from_pg_text(RelationColumn(0, "c", oid, -1), text)
    if isinstance(expected, list) and expected and isinstance(expected[-1], Decimal) and expected[-1].is_nan():
        assert value[0] == expected[0] and value[1].is_nan()
        return
    assert value == expected
    assert type(value) is type(expected)


def test_value_from_pg_text_null() -> None:
    assert value_from_pg_text(RelationColumn(0, "c", 16, -1), None) is None


@pytest.mark.parametrize("text", ["{a", '{"a}', "{a}x", "a}", "{a,{b}"])
def test_malformed_arrays_raise(text: str) -> None:
    with pytest.raises(PgOutputError):
        parse_array(text)
