"""postgres_changes bindings: parsing, echo ids, and filter matching with SQL semantics."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wexlot.realtime.bindings import BindingError, binding_id, parse_binding, parse_bindings


def test_ids_are_stable_ints_and_echo_is_verbatim() -> None:
    raw = {"event": "insert", "schema": "public", "table": "deals", "filter": "stage=eq.won"}
    first, second = parse_binding(dict(raw)), parse_binding(dict(raw))
    assert first.id == second.id == binding_id(raw) and isinstance(first.id, int) and first.id < 2**27
    assert first.echo == raw and first.event == "INSERT"
    assert parse_binding({"event": "*", "schema": "public", "table": "deals"}).id != first.id


@pytest.mark.parametrize(
    ("flt", "row", "expected"),
    [
        ("stage=eq.won", {"stage": "won"}, True),
        ("stage=neq.won", {"stage": "won"}, False),
        ("amount=gt.100", {"amount": Decimal("100.01")}, True),
        ("amount=lte.100", {"amount": Decimal("100.00")}, True),
        ("stage=in.(won,lost)", {"stage": "lost"}, True),
        ("stage=not.in.(won,lost)", {"stage": "lead"}, True),
        ("contact_id=is.null", {"contact_id": None}, True),
        ("contact_id=eq.00000000-0000-4000-8000-000000000000", {"contact_id": None}, False),
        ("contact_id=not.eq.00000000-0000-4000-8000-000000000000", {"contact_id": None}, False),
        ("title=ilike.*BIG*", {"title": "a big deal"}, True),
        ("title=like.*BIG*", {"title": "a big deal"}, False),
        ("stage=eq.won,amount=gt.5", {"stage": "won", "amount": Decimal(3)}, False),
        ('title=eq."a,b"', {"title": "a,b"}, True),
    ],
)
def test_filter_matching(flt: str, row: dict, expected: bool) -> None:
    binding = parse_binding({"event": "*", "schema": "public", "table": "deals", "filter": flt})
    assert binding.matches("deals", row) is expected


@pytest.mark.parametrize(
    "raw",
    [
        {"event": "*", "schema": "public", "table": "nope"},
        {"event": "*", "schema": "public", "table": "deals", "filter": "nope=eq.1"},
        {"event": "*", "schema": "public", "table": "deals", "filter": "stage=bogus.1"},
        {"event": "*", "schema": "public", "table": "deals", "filter": "undefined"},
        {"event": "*"},
        "not an object",
    ],
)
def test_bad_bindings(raw: object) -> None:
    with pytest.raises(BindingError):
        parse_bindings([raw])


def test_wildcards() -> None:
    binding = parse_binding({"event": "DELETE", "schema": "public"})
    assert binding.table == "*" and binding.wants("contacts", "DELETE") and not binding.wants("contacts", "INSERT")
