"""Decoder for PostgreSQL's ``pgoutput`` logical replication protocol, version 1. Pure: bytes in, values out.

Three layers, each usable alone (the shape of supabase/realtime's ``decoder.ex``):

* :func:`decode_message` turns one ``XLogData`` payload into a message dataclass — :class:`Begin`,
  :class:`Commit`, :class:`Origin`, :class:`Relation`, :class:`Type`, :class:`Insert`,
  :class:`Update`, :class:`Delete`, :class:`Truncate` or :class:`LogicalMessage`. Column values stay
  as sent: ``None`` (``'n'``), :data:`UNCHANGED` (``'u'``, an unchanged TOASTed value that was not
  sent), ``str`` (``'t'``, PostgreSQL's text output) or ``bytes`` (``'b'``, binary).
* :func:`value_from_pg_text` turns a text value into a Python value by the column's type OID.
* :class:`TransactionAssembler` caches relations, collects ``Begin … Commit`` into one
  :class:`Transaction` of :class:`RowChange` rows with Python values, and fills unchanged TOASTed
  values of an UPDATE's new row from its old row (present in full under ``REPLICA IDENTITY FULL``).

Layouts follow "Logical Replication Message Formats" in the PostgreSQL manual. Integers are
big-endian, strings NUL-terminated, timestamps microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class PgOutputError(ValueError):
    """A payload that is not a well-formed pgoutput v1 message (or arrives out of order)."""


class _Unchanged:
    """The ``'u'`` marker: an unchanged TOASTed value the server did not send."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __reduce__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()

# One value of a TupleData: None ('n'), UNCHANGED ('u'), str ('t') or bytes ('b').
TupleData = tuple[Any, ...]


# --- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Begin:
    final_lsn: int  # LSN of the transaction's commit record
    commit_time: dt.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    flags: int
    commit_lsn: int  # LSN of the commit record (Begin.final_lsn)
    end_lsn: int  # end of the commit record: what to acknowledge once the transaction is handled
    commit_time: dt.datetime


@dataclass(frozen=True)
class Origin:
    commit_lsn: int  # the commit's LSN on the origin server
    name: str


@dataclass(frozen=True)
class RelationColumn:
    flags: int  # 1: part of the replica identity key
    name: str
    type_oid: int
    type_modifier: int

    @property
    def is_key(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str  # "" stands for pg_catalog
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True)
class Type:
    """Sent before a Relation that uses a non-built-in type (an enum, a domain, …)."""

    oid: int
    namespace: str
    name: str


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: TupleData


@dataclass(frozen=True)
class Update:
    relation_oid: int
    old_kind: Literal["K", "O"] | None  # 'K' key columns only, 'O' whole old row, None: not sent
    old: TupleData | None
    new: TupleData


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old_kind: Literal["K", "O"]
    old: TupleData


@dataclass(frozen=True)
class Truncate:
    options: int  # 1: CASCADE, 2: RESTART IDENTITY
    relation_oids: tuple[int, ...]

    @property
    def cascade(self) -> bool:
        return bool(self.options & 1)

    @property
    def restart_identity(self) -> bool:
        return bool(self.options & 2)


@dataclass(frozen=True)
class LogicalMessage:
    """``pg_logical_emit_message`` output (sent only with the ``messages`` option)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | LogicalMessage


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, fmt: str, size: int) -> Any:
        if self.pos + size > len(self.buf):
            raise PgOutputError(f"message truncated at byte {self.pos} (needs {size} more)")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def byte(self) -> str:
        return chr(self._take("!B", 1))

    def int8(self) -> int:
        return int(self._take("!b", 1))

    def int16(self) -> int:
        return int(self._take("!h", 2))

    def int32(self) -> int:
        return int(self._take("!i", 4))

    def uint32(self) -> int:
        return int(self._take("!I", 4))

    def uint64(self) -> int:
        return int(self._take("!Q", 8))

    def int64(self) -> int:
        return int(self._take("!q", 8))

    def timestamp(self) -> dt.datetime:
        return PG_EPOCH + dt.timedelta(microseconds=self.int64())

    def string(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError(f"unterminated string at byte {self.pos}")
        text = self.buf[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def raw(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.buf):
            raise PgOutputError(f"message truncated at byte {self.pos} (needs {size} more)")
        data = self.buf[self.pos : self.pos + size]
        self.pos += size
        return data

    def tuple_data(self) -> TupleData:
        values: list[Any] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self.raw(self.int32()).decode("utf-8"))
            elif kind == "b":
                values.append(self.raw(self.int32()))
            else:
                raise PgOutputError(f"unknown tuple value kind {kind!r}")
        return tuple(values)

    def old_kind(self) -> Literal["K", "O"]:
        kind = self.byte()
        if kind not in ("K", "O"):
            raise PgOutputError(f"expected an old tuple ('K' or 'O'), got {kind!r}")
        return "K" if kind == "K" else "O"

    def new_marker(self) -> None:
        kind = self.byte()
        if kind != "N":
            raise PgOutputError(f"expected a new tuple ('N'), got {kind!r}")


def decode_message(payload: bytes) -> Message:
    """Decode one pgoutput v1 message (the payload of one ``XLogData``)."""
    if not payload:
        raise PgOutputError("empty message")
    r = _Reader(bytes(payload))
    tag = r.byte()
    msg: Message
    if tag == "B":
        msg = Begin(final_lsn=r.uint64(), commit_time=r.timestamp(), xid=r.uint32())
    elif tag == "C":
        msg = Commit(flags=r.int8(), commit_lsn=r.uint64(), end_lsn=r.uint64(), commit_time=r.timestamp())
    elif tag == "O":
        msg = Origin(commit_lsn=r.uint64(), name=r.string())
    elif tag == "R":
        oid, namespace, name, identity = r.uint32(), r.string(), r.string(), r.byte()
        columns = tuple(
            RelationColumn(flags=r.int8(), name=r.string(), type_oid=r.uint32(), type_modifier=r.int32())
            for _ in range(r.int16())
        )
        msg = Relation(oid, namespace, name, identity, columns)
    elif tag == "Y":
        msg = Type(oid=r.uint32(), namespace=r.string(), name=r.string())
    elif tag == "I":
        oid = r.uint32()
        r.new_marker()
        msg = Insert(oid, r.tuple_data())
    elif tag == "U":
        oid = r.uint32()
        old_kind: Literal["K", "O"] | None = None
        old: TupleData | None = None
        kind = r.byte()
        if kind in ("K", "O"):
            old_kind, old = ("K" if kind == "K" else "O"), r.tuple_data()
            kind = r.byte()
        if kind != "N":
            raise PgOutputError(f"expected a new tuple ('N'), got {kind!r}")
        msg = Update(oid, old_kind, old, r.tuple_data())
    elif tag == "D":
        oid = r.uint32()
        kind_d = r.old_kind()
        msg = Delete(oid, kind_d, r.tuple_data())
    elif tag == "T":
        count, options = r.int32(), r.int8()
        msg = Truncate(options, tuple(r.uint32() for _ in range(count)))
    elif tag == "M":
        flags, lsn, prefix = r.int8(), r.uint64(), r.string()
        msg = LogicalMessage(bool(flags & 1), lsn, prefix, r.raw(r.int32()))
    else:
        raise PgOutputError(f"unknown pgoutput message type {tag!r} (only protocol version 1 is supported)")
    if r.pos != len(r.buf):
        raise PgOutputError(f"{len(r.buf) - r.pos} unexpected trailing bytes after a {tag!r} message")
    return msg


# --- values --------------------------------------------------------------------------------------


def _bool(text: str) -> bool:
    return text == "t"


# ±infinity as the extreme values, as asyncpg (and so a REST read) returns them.
_TS_INFINITY = {"infinity": dt.datetime.max, "-infinity": dt.datetime.min}
_DATE_INFINITY = {"infinity": dt.date.max, "-infinity": dt.date.min}


def _timestamptz(text: str) -> Any:
    if text in _TS_INFINITY:
        return _TS_INFINITY[text].replace(tzinfo=dt.UTC)
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        return text  # BC dates, years past 9999: nothing Python can hold


def _timestamp(text: str) -> Any:
    if text in _TS_INFINITY:
        return _TS_INFINITY[text]
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text


def _time(text: str) -> Any:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        return text


def _date(text: str) -> Any:
    if text in _DATE_INFINITY:
        return _DATE_INFINITY[text]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return text


def _numeric(text: str) -> Any:
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _bytea(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")  # the old "escape" format


def _uuid(text: str) -> str:
    return str(uuid.UUID(text))


def _text(text: str) -> str:
    return text


SCALARS: dict[int, Callable[[str], Any]] = {
    16: _bool,  # bool
    17: _bytea,  # bytea
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    26: int,  # oid
    700: float,  # float4
    701: float,  # float8
    1700: _numeric,  # numeric
    2950: _uuid,  # uuid
    1082: _date,  # date
    1083: _time,  # time
    1114: _timestamp,  # timestamp
    1184: _timestamptz,  # timestamptz
    114: json.loads,  # json
    3802: json.loads,  # jsonb
}
ARRAYS: dict[int, int] = {  # array type OID -> element type OID
    1000: 16, 1001: 17, 1016: 20, 1005: 21, 1007: 23, 1028: 26, 1021: 700, 1022: 701, 1231: 1700,
    2951: 2950, 1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184, 199: 114, 3807: 3802,
    1009: 25, 1015: 1043, 1014: 1042, 1003: 19,
}  # fmt: skip


def value_from_pg_text(column: RelationColumn, text: str | None) -> Any:
    """The Python value of ``text`` (PostgreSQL's text output) for a column of ``column.type_oid``.

    bool → ``bool``; integers → ``int``; float4/float8 → ``float``; numeric → ``Decimal``; uuid →
    canonical ``str``; date → ``date``; timestamptz → aware ``datetime`` in UTC; timestamp → naive
    ``datetime`` (``±infinity`` → ``max``/``min``); json/jsonb → parsed JSON; arrays of those →
    nested ``list`` (NULL → ``None``). Anything else (text, varchar, enums, …) and values Python
    cannot hold (BC dates) stay text.
    """
    if text is None:
        return None
    element = ARRAYS.get(column.type_oid)
    if element is not None:
        return parse_array(text, SCALARS.get(element, _text))
    return SCALARS.get(column.type_oid, _text)(text)


def parse_array(text: str, element: Callable[[str], Any] = _text) -> list[Any]:
    """Parse an array's text output (``{a,"b c",NULL}``, nested, with ``[l:u]=`` bounds) into lists."""
    pos = 0
    if text.startswith("["):  # explicit bounds, e.g. "[0:1]={a,b}"
        pos = text.index("=") + 1
    value, end = _parse_array_at(text, pos, element)
    if text[end:].strip():
        raise PgOutputError(f"malformed array literal {text!r}")
    return value


def _parse_array_at(text: str, pos: int, element: Callable[[str], Any]) -> tuple[list[Any], int]:
    if pos >= len(text) or text[pos] != "{":
        raise PgOutputError(f"malformed array literal {text!r}")
    pos += 1
    items: list[Any] = []
    if text[pos : pos + 1] == "}":
        return items, pos + 1
    while True:
        if pos >= len(text):
            raise PgOutputError(f"malformed array literal {text!r}")
        ch = text[pos]
        if ch == "{":
            sub, pos = _parse_array_at(text, pos, element)
            items.append(sub)
        elif ch == '"':
            chars: list[str] = []
            pos += 1
            while True:
                if pos >= len(text):
                    raise PgOutputError(f"unterminated quoted array element in {text!r}")
                ch = text[pos]
                if ch == "\\":
                    chars.append(text[pos + 1 : pos + 2])
                    pos += 2
                elif ch == '"':
                    pos += 1
                    break
                else:
                    chars.append(ch)
                    pos += 1
            items.append(element("".join(chars)))
        else:
            start = pos
            while pos < len(text) and text[pos] not in ",}":
                pos += 1
            raw = text[start:pos].strip()
            items.append(None if raw.upper() == "NULL" else element(raw))
        if pos >= len(text):
            raise PgOutputError(f"malformed array literal {text!r}")
        if text[pos] == ",":
            pos += 1
        elif text[pos] == "}":
            return items, pos + 1
        else:
            raise PgOutputError(f"malformed array literal {text!r}")


# --- transactions --------------------------------------------------------------------------------

ChangeKind = Literal["INSERT", "UPDATE", "DELETE"]


@dataclass(frozen=True)
class RowChange:
    relation: Relation
    kind: ChangeKind
    new: dict[str, Any] | None  # INSERT/UPDATE
    old: dict[str, Any] | None  # UPDATE/DELETE; only the key columns unless REPLICA IDENTITY FULL
    missing: tuple[str, ...] = ()  # unchanged TOASTed columns of ``new`` that no old row could fill


@dataclass
class Transaction:
    xid: int
    commit_lsn: int
    end_lsn: int
    commit_time: dt.datetime
    changes: list[RowChange] = field(default_factory=list)
    truncated: list[Relation] = field(default_factory=list)
    messages: list[LogicalMessage] = field(default_factory=list)
    origin: str | None = None


class TransactionAssembler:
    """Feeds on one replication session's messages; returns each transaction complete at its Commit.

    Relation (and Type) messages are cached by OID: the server sends one before a relation's first
    change in a session and again whenever its definition changes. Start a new assembler for each
    new session (a reconnect), since an interrupted transaction is sent again from its Begin.
    """

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.types: dict[int, Type] = {}
        self._current: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        return self._current is not None

    def feed(self, payload: bytes | Message) -> Transaction | None:
        msg = decode_message(payload) if isinstance(payload, bytes | bytearray | memoryview) else payload
        if isinstance(msg, Relation):
            self.relations[msg.oid] = msg
        elif isinstance(msg, Type):
            self.types[msg.oid] = msg
        elif isinstance(msg, Begin):
            if self._current is not None:
                raise PgOutputError(f"Begin of xid {msg.xid} inside xid {self._current.xid}")
            self._current = Transaction(msg.xid, msg.final_lsn, 0, msg.commit_time)
        elif isinstance(msg, Commit):
            txn = self._require(msg)
            txn.commit_lsn, txn.end_lsn, txn.commit_time = msg.commit_lsn, msg.end_lsn, msg.commit_time
            self._current = None
            return txn
        elif isinstance(msg, LogicalMessage):
            if msg.transactional:
                self._require(msg).messages.append(msg)
        elif isinstance(msg, Origin):
            self._require(msg).origin = msg.name
        elif isinstance(msg, Truncate):
            self._require(msg).truncated.extend(self._relation(oid) for oid in msg.relation_oids)
        else:
            self._require(msg).changes.append(self.row_change(msg))
        return None

    def row_change(self, msg: Insert | Update | Delete) -> RowChange:
        rel = self._relation(msg.relation_oid)
        if isinstance(msg, Insert):
            new, missing = _row(rel, msg.new, None)
            return RowChange(rel, "INSERT", new, None, missing)
        if isinstance(msg, Delete):
            old, _ = _row(rel, msg.old, None, keys_only=msg.old_kind == "K")
            return RowChange(rel, "DELETE", None, old)
        old = None
        if msg.old is not None:
            old, _ = _row(rel, msg.old, None, keys_only=msg.old_kind == "K")
        new, missing = _row(rel, msg.new, old)
        return RowChange(rel, "UPDATE", new, old, missing)

    def _relation(self, oid: int) -> Relation:
        try:
            return self.relations[oid]
        except KeyError:
            raise PgOutputError(f"change for relation {oid} before its Relation message") from None

    def _require(self, msg: Message) -> Transaction:
        if self._current is None:
            raise PgOutputError(f"{type(msg).__name__} message outside a transaction")
        return self._current


def _row(
    rel: Relation, values: TupleData, fill_from: dict[str, Any] | None, keys_only: bool = False
) -> tuple[dict[str, Any], tuple[str, ...]]:
    if len(values) != len(rel.columns):
        raise PgOutputError(f"{rel.name}: {len(values)} values for {len(rel.columns)} columns")
    row: dict[str, Any] = {}
    missing: list[str] = []
    for col, raw in zip(rel.columns, values, strict=True):
        if keys_only and not col.is_key:
            continue  # a 'K' tuple sends NULLs for the non-key columns
        if raw is UNCHANGED:
            if fill_from is not None and col.name in fill_from:
                row[col.name] = fill_from[col.name]
            else:
                missing.append(col.name)
        elif isinstance(raw, bytes):
            row[col.name] = raw  # binary mode is never requested; keep the bytes as sent
        else:
            row[col.name] = value_from_pg_text(col, raw)
    return row, tuple(missing)
