"""Phoenix frames for the Supabase Realtime protocol: decode and encode, both serializers. Pure.

* ``1.0.0`` (realtime-py, older realtime-js): text frames holding a JSON object. Server frames carry
  exactly ``topic``, ``event``, ``payload`` and ``ref`` (``ref`` kept even when null).
* ``2.0.0`` (realtime-js ≥ 2.91): text frames holding ``[join_ref, ref, topic, event, payload]``,
  plus binary user broadcasts: kind 3 (client → server push) and kind 4 (server → client).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

V1 = "1.0.0"
V2 = "2.0.0"
VERSIONS = (V1, V2)
KIND_PUSH = 3
KIND_BROADCAST = 4


class ProtocolError(ValueError):
    """A frame that cannot be decoded; the socket logs it and carries on."""


@dataclass
class Frame:
    topic: str
    event: str
    payload: Any
    ref: str | None = None
    join_ref: str | None = None


def decode(data: str | bytes, vsn: str) -> Frame:
    if isinstance(data, bytes | bytearray):
        return _decode_binary(bytes(data))
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from None
    if vsn == V2 and isinstance(obj, list):
        if len(obj) != 5:
            raise ProtocolError("a 2.0.0 frame is [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = obj
    elif isinstance(obj, dict):
        topic, event, payload = obj.get("topic"), obj.get("event"), obj.get("payload")
        ref, join_ref = obj.get("ref"), obj.get("join_ref")
    else:
        raise ProtocolError("frame must be a JSON object (1.0.0) or array (2.0.0)")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("frame needs a string topic and event")
    return Frame(topic, event, payload if payload is not None else {}, _ref(ref), _ref(join_ref))


def _ref(value: Any) -> str | None:
    return None if value is None else str(value)


def _decode_binary(data: bytes) -> Frame:
    """Kind 3: user broadcast push → the same Frame a text broadcast would give."""
    if len(data) < 7 or data[0] != KIND_PUSH:
        raise ProtocolError("unsupported binary frame")
    jr_len, ref_len, topic_len, event_len, meta_len, encoding = data[1:7]
    pos = 7
    fields = []
    for length in (jr_len, ref_len, topic_len, event_len, meta_len):
        fields.append(data[pos : pos + length])
        pos += length
    if pos > len(data):
        raise ProtocolError("truncated binary frame")
    join_ref, ref, topic, event, meta = (f.decode() for f in fields)
    body = data[pos:]
    if encoding == 1:
        try:
            payload: Any = json.loads(body) if body else {}
        except ValueError:
            raise ProtocolError("binary broadcast payload is not JSON") from None
    else:
        payload = body
    message: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload}
    if meta:
        try:
            message["meta"] = json.loads(meta)
        except ValueError:
            raise ProtocolError("binary broadcast meta is not JSON") from None
    return Frame(topic, "broadcast", message, ref or None, join_ref or None)


def encode(frame: Frame, vsn: str) -> str:
    if vsn == V2:
        return json.dumps([frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload], separators=(",", ":"))
    return json.dumps(
        {"topic": frame.topic, "event": frame.event, "payload": frame.payload, "ref": frame.ref}, separators=(",", ":")
    )


def encode_raw(topic: str, event: str, payload_json: str, vsn: str, join_ref: str | None = None) -> str:
    """Encode a server push whose payload is already JSON text (fan-out encodes payloads once)."""
    topic_json = json.dumps(topic)
    if vsn == V2:
        jr = "null" if join_ref is None else json.dumps(join_ref)
        return f'[{jr},null,{topic_json},"{event}",{payload_json}]'
    return f'{{"topic":{topic_json},"event":"{event}","payload":{payload_json},"ref":null}}'


def encode_binary_broadcast(topic: str, event: str, payload: bytes, json_payload: bool, meta: bytes = b"") -> bytes:
    """Kind 4: server → client user broadcast (realtime-js 2.0.0 decodes only this binary kind)."""
    t, e = topic.encode(), event.encode()
    if max(len(t), len(e), len(meta)) > 255:
        raise ProtocolError("topic, event and meta must each be at most 255 bytes")
    header = bytes([KIND_BROADCAST, len(t), len(e), len(meta), 1 if json_payload else 0])
    return header + t + e + meta + payload


def reply(frame: Frame, status: str, response: Any) -> Frame:
    return Frame(frame.topic, "phx_reply", {"status": status, "response": response}, frame.ref, frame.join_ref)
