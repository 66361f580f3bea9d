"""Fan-out: each committed change → the channels that may see it, decided and encoded once.

For every change and subscriber the hub asks two questions with the shared access rule (no query):
could this principal read the row *before* (old row) and *after* (new row), and does each binding's
filter match the old/new row. That yields the event that keeps the subscriber's view correct:

    before  after   →  event
    no      yes        INSERT  (also an UPDATE that moves a row into view)
    yes     yes        UPDATE
    yes     no         DELETE  (a real delete, or a move out of view: then old_record is the key only)

Verdicts are cached per principal and payloads per event type, so the per-subscriber work is a dict
lookup and a string concatenation. Frames go to bounded outboxes; a slow client never blocks others.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from wexlot.crm.access import ParentLookup, Principal, can_read_row
from wexlot.crm.records import json_value
from wexlot.crm.tables import CRM_TABLES
from wexlot.realtime import protocol
from wexlot.realtime.change import Change, columns
from wexlot.realtime.parents import ParentCache, child_links
from wexlot.realtime.session import Channel, Connection
from wexlot.storage.database import Database

log = logging.getLogger("wexlot.realtime")

COLUMNS_JSON = {t: json.dumps(columns(t), separators=(",", ":")) for t in CRM_TABLES}
POSITION_EVENT = "position"


def timestamp_ms(change: Change) -> str:
    stamp = change.commit_timestamp
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


MAX_RECORD_BYTES = 1024 * 1024  # the real server's postgres_changes payload limit
MAX_FIELD_BYTES = 64  # what it keeps of an oversized record: the fields up to this size
TOO_LARGE = '["Error 413: Payload Too Large"]'


def row_json(row: Mapping[str, Any]) -> tuple[str, bool]:
    """The row as JSON, or — past 1 MiB — only its small fields (flagged, as the real server does)."""
    values = {k: json_value(v) for k, v in row.items()}
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= MAX_RECORD_BYTES:
        return text, False
    small = {}
    for key, value in values.items():
        encoded = json.dumps(value, ensure_ascii=False)
        if len(encoded.encode()) <= MAX_FIELD_BYTES:
            small[key] = value
    return json.dumps(small, separators=(",", ":"), ensure_ascii=False), True


def event_data(change: Change, typ: str, key_only: bool = False) -> str:
    """The ``data`` object of a postgres_changes message, as JSON text."""
    parts = [
        f'"schema":"public","table":"{change.table}","commit_timestamp":"{timestamp_ms(change)}",'
        f'"type":"{typ}","columns":{COLUMNS_JSON[change.table]}'
    ]
    too_large = False
    if typ != "DELETE" and change.record is not None:
        text, cut = row_json(change.record)
        parts.append(f'"record":{text}')
        too_large |= cut
    if typ != "INSERT":
        old = change.old_record if change.old_record is not None else change.record
        assert old is not None
        text, cut = row_json({"id": old["id"]} if key_only else old)
        parts.append(f'"old_record":{text}')
        too_large |= cut
    parts.append(f'"errors":{TOO_LARGE if too_large else "null"},"position":{change.position}')
    return "{" + ",".join(parts) + "}"


def event_for(before: bool, after: bool) -> str | None:
    if after:
        return "UPDATE" if before else "INSERT"
    return "DELETE" if before else None


def binding_event(wanted: str, change_type: str, before: bool, after: bool, synthetic: bool) -> str | None:
    """The event a binding gets, given whether the row was/is in its view (readable and matching).

    A ``*`` binding mirrors a view: moves in and out become INSERT and DELETE (synthetic moves, caused
    by a parent's visibility, only ever are). A binding for one event keeps the real server's rule:
    that event, when the new row (the old one, for DELETE) is in view.
    """
    if wanted == "*":
        typ = event_for(before, after)
        return None if synthetic and typ == "UPDATE" else typ
    if synthetic or change_type != wanted:
        return None
    return wanted if (before if wanted == "DELETE" else after) else None


class Hub:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.parents = ParentCache()
        self.connections: set[Connection] = set()
        self._by_table: dict[str, set[Channel]] = defaultdict(set)
        self.by_topic: dict[str, set[Channel]] = defaultdict(set)
        self.presence: Any = None  # set by the service; notified when a channel goes away
        self.position = 0
        self.table_counts: Counter[str] = Counter()
        self.deliveries = 0
        self.last_error: str | None = None

    # --- registry ----------------------------------------------------------------------------

    def add_channel(self, channel: Channel) -> None:
        for table in channel.tables:
            self._by_table[table].add(channel)
        self.by_topic[channel.topic].add(channel)

    def remove_channel(self, channel: Channel) -> None:
        """Unregister a channel however it ends (leave, close, socket gone); its presence goes too."""
        for table in channel.tables:
            self._by_table[table].discard(channel)
        members = self.by_topic.get(channel.topic)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.by_topic[channel.topic]
        if self.presence is not None:  # after leaving the topic: the leave goes to the others only
            self.presence.remove(channel)

    def channels(self) -> Iterable[Channel]:
        for conn in self.connections:
            yield from conn.channels.values()

    def _listeners(self, table: str) -> set[Channel]:
        return self._by_table.get(table, set()) | self._by_table.get("*", set())

    # --- the change stream -------------------------------------------------------------------

    async def on_transaction(self, changes: list[Change]) -> None:
        touched: set[Channel] = set()
        for change in changes:
            if change.table == "staff":
                self._reauthorize(change)
            lookup = self.parents.lookup
            touched |= self._fan_out(change, lookup, lookup)
            row = change.row
            old_entry = self.parents.lookup(change.table, row["id"])
            if self.parents.apply(change.table, change.record, change.old_record):
                touched |= await self._children(change, old_entry)
            self.table_counts[change.table] += 1
            self.position = change.position
        if changes:
            self._checkpoint(touched)

    def _fan_out(
        self, change: Change, before_lookup: ParentLookup, after_lookup: ParentLookup, synthetic: bool = False
    ) -> set[Channel]:
        listeners = self._listeners(change.table)
        if not listeners:
            return set()
        table, old, new = change.table, change.old_record, change.record
        verdicts: dict[Principal, tuple[bool, bool]] = {}
        payloads: dict[tuple[str, bool], str] = {}
        touched = set()
        for channel in listeners:
            principal = channel.principal
            verdict = verdicts.get(principal)
            if verdict is None:
                try:
                    before = old is not None and can_read_row(principal, table, old, before_lookup)
                    after = new is not None and can_read_row(principal, table, new, after_lookup)
                except Exception:  # a rule failing for one subscriber must not stop the others
                    log.exception("access check failed for channel %s", channel.topic)
                    before = after = False
                verdict = verdicts[principal] = (before, after)
            before, after = verdict
            if not (before or after):
                continue
            ids: dict[str, list[int]] = {}
            for binding in channel.bindings:
                if binding.table not in ("*", table) or binding.schema not in ("public", "*"):
                    continue
                b_before = before and (not binding.conditions or binding.matches(table, old or {}))
                b_after = after and (not binding.conditions or binding.matches(table, new or {}))
                typ = binding_event(binding.event, change.type, b_before, b_after, synthetic)
                if typ is not None:
                    ids.setdefault(typ, []).append(binding.id)
            for typ, matched in ids.items():
                key_only = typ == "DELETE" and new is not None
                data = payloads.get((typ, key_only))
                if data is None:
                    data = payloads[(typ, key_only)] = event_data(change, typ, key_only)
                payload = '{"ids":' + json.dumps(matched) + ',"data":' + data + "}"
                channel.conn.send_raw(protocol.encode_raw(channel.topic, "postgres_changes", payload, channel.conn.vsn))
                channel.events_sent += 1
                self.deliveries += 1
                touched.add(channel)
        return touched

    async def _children(self, change: Change, old_entry: Mapping[str, Any] | None) -> set[Channel]:
        """A parent's visibility or owner changed: its children may enter or leave subscribers' view.

        Only for UPDATEs: a new parent has no children yet that were visible before, and a deleted
        one's children change themselves (SET NULL, cascades) in the stream. Children created after
        the parent's change are left to their own INSERT later in the stream.
        """
        if change.type != "UPDATE":
            return set()
        touched: set[Channel] = set()
        before = self.parents.lookup_with({(change.table, change.row["id"]): old_entry} if old_entry else {})
        for child, row in await child_rows(
            self.db, change, [t for t, _ in child_links(change.table) if self._listeners(t)]
        ):
            synthetic = Change(child, "UPDATE", row, row, change.commit_timestamp, change.position)
            touched |= self._fan_out(synthetic, before, self.parents.lookup, synthetic=True)
        return touched

    def _reauthorize(self, change: Change) -> None:
        """A change to a subscriber's own staff row re-authorizes its channels at once."""
        new, old = change.record, change.old_record
        ids = {r["id"] for r in (new, old) if r}
        users = {r.get("user_id") for r in (new, old) if r and r.get("user_id")}
        for channel in list(self.channels()):
            p = channel.principal
            if p.role != "authenticated" or not (p.staff_id in ids or p.user_id in users):
                continue
            linked = new is not None and new.get("user_id") == p.user_id
            principal = Principal(
                role="authenticated",
                user_id=p.user_id,
                staff_id=new["id"] if linked and new else None,
                staff_role=new.get("role") if linked and new else None,
                active=bool(linked and new and new.get("is_active")),
                email=p.email,
                session_id=p.session_id,
            )
            if p.is_staff and not principal.is_staff:
                self.close_channel(
                    channel, f"You no longer have permission to read from this Channel topic: {channel.name}"
                )
            else:
                channel.principal = principal

    def _checkpoint(self, channels: set[Channel]) -> None:
        for channel in channels:
            if channel.conn.checkpoints:
                send_position(channel, self.position)

    # --- channel lifecycle helpers -----------------------------------------------------------

    def close_channel(self, channel: Channel, message: str) -> None:
        """End a channel with a ``system`` error then ``phx_close`` (clients show the reason)."""
        log.info("closing channel %s on connection %s: %s", channel.topic, channel.conn.id, message)
        channel.push("system", {"extension": "system", "status": "error", "message": message, "channel": channel.name})
        channel.conn.send(protocol.Frame(channel.topic, "phx_close", {}, channel.join_ref, channel.join_ref))
        self.remove_channel(channel)
        channel.conn.channels.pop(channel.topic, None)


async def child_rows(db: Database, change: Change, tables: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """The rows of ``tables`` that reference the changed parent and already existed at its commit."""
    out: list[tuple[str, dict[str, Any]]] = []
    wanted = set(tables)
    links = [(child, column) for child, column in child_links(change.table) if child in wanted]
    if not links:
        return out
    async with db.read() as conn:
        for child, column in links:
            table = CRM_TABLES[child]
            query = select(table).where(
                table.c[column] == change.row["id"], table.c.created_at <= change.commit_timestamp
            )
            out += [(child, dict(r._mapping)) for r in await conn.execute(query)]
    return out


def send_position(channel: Channel, position: int) -> None:
    """The opt-in checkpoint: a broadcast the unmodified clients deliver to app code."""
    payload = {"type": "broadcast", "event": POSITION_EVENT, "payload": {"position": position}}
    channel.conn.send(protocol.Frame(channel.topic, "broadcast", payload, None, None))
