"""Phoenix-style presence on a topic: ``track``/``untrack``, ``presence_state`` and ``presence_diff``.

State lives per topic as ``{key: [meta…]}``; each meta carries a unique ``phx_ref``. A channel's
entry goes away when it untracks, leaves, or its socket closes (heartbeat timeout included), so a
crashed client leaves no ghost.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from wexlot.realtime import protocol
from wexlot.realtime.session import Channel


class Presence:
    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self._metas: dict[str, dict[Channel, tuple[str, dict[str, Any]]]] = defaultdict(dict)

    def state(self, topic: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, meta in self._metas.get(topic, {}).values():
            out.setdefault(key, {"metas": []})["metas"].append(meta)
        return out

    def count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._metas.get(topic, {}))
        return sum(len(v) for v in self._metas.values())

    def handle(self, channel: Channel, frame: protocol.Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        event = payload.get("event")
        if event == "track":
            meta = payload.get("payload", {})
            if not isinstance(meta, dict):
                channel.conn.send(protocol.reply(frame, "error", {"reason": "Presence track payload must be a map"}))
                return
            channel.presence_enabled = True
            self.track(channel, meta)
        elif event == "untrack":
            self.untrack(channel)
        else:
            channel.conn.send(protocol.reply(frame, "error", {}))
            return
        channel.conn.send(protocol.reply(frame, "ok", {}))

    def track(self, channel: Channel, meta: dict[str, Any]) -> None:
        topic_metas = self._metas[channel.topic]
        key = channel.presence_key or self._generated_key(channel)
        previous = topic_metas.get(channel)
        if previous is not None:
            old_meta = {k: v for k, v in previous[1].items() if k not in ("phx_ref", "phx_ref_prev")}
            if old_meta == meta:
                return  # an identical track is a no-op
        new_meta = {**meta, "phx_ref": uuid.uuid4().hex[:16]}
        if previous is not None:
            new_meta["phx_ref_prev"] = previous[1]["phx_ref"]
        topic_metas[channel] = (key, new_meta)
        leaves = {previous[0]: {"metas": [previous[1]]}} if previous else {}
        self._diff(channel.topic, {key: {"metas": [new_meta]}}, leaves)

    def untrack(self, channel: Channel) -> None:
        entry = self._metas.get(channel.topic, {}).pop(channel, None)
        if entry is not None:
            self._diff(channel.topic, {}, {entry[0]: {"metas": [entry[1]]}})
        if channel.topic in self._metas and not self._metas[channel.topic]:
            del self._metas[channel.topic]

    def remove(self, channel: Channel) -> None:
        self.untrack(channel)

    def _generated_key(self, channel: Channel) -> str:
        channel.presence_key = str(uuid.uuid4())
        return channel.presence_key

    def _diff(self, topic: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        frame = protocol.Frame(topic, "presence_diff", {"joins": joins, "leaves": leaves}, None, None)
        for member in list(self.hub.by_topic.get(topic, ())):
            member.conn.send(frame)
