"""Codec tests on frames captured from the official clients (reference §1-§5)."""

from __future__ import annotations

import json

import pytest

from wexlot.realtime import protocol
from wexlot.realtime.protocol import V1, V2, Frame, ProtocolError


def test_decode_v2_join_captured_from_supabase_js() -> None:
    raw = (
        '["6","6","realtime:room2","phx_join",{"config":{"broadcast":{"ack":false,"self":false},'
        '"presence":{"key":"","enabled":false},"postgres_changes":[{"event":"UPDATE","schema":"public",'
        '"table":"deals"}],"private":false}}]'
    )
    frame = protocol.decode(raw, V2)
    assert (frame.join_ref, frame.ref, frame.topic, frame.event) == ("6", "6", "realtime:room2", "phx_join")
    assert frame.payload["config"]["postgres_changes"][0]["table"] == "deals"


def test_decode_v1_frames_captured_from_realtime_py() -> None:
    heartbeat = '{"event":"heartbeat","payload":{},"topic":"phoenix","ref":null,"join_ref":null}'
    frame = protocol.decode(heartbeat, V1)
    assert frame.topic == "phoenix" and frame.ref is None
    join = '{"event":"phx_join","payload":{"config":{}},"topic":"realtime:room1","ref":"1","join_ref":"1"}'
    assert protocol.decode(join, V1).join_ref == "1"


def test_decode_binary_user_broadcast_push_captured() -> None:
    # 03 01 01 0e 04 00 01 "6" "8" "realtime:room1" "ping" {"x":1}
    data = bytes([3, 1, 1, 14, 4, 0, 1]) + b"6" + b"8" + b"realtime:room1" + b"ping" + b'{"x":1}'
    frame = protocol.decode(data, V2)
    assert (frame.join_ref, frame.ref, frame.topic, frame.event) == ("6", "8", "realtime:room1", "broadcast")
    assert frame.payload == {"type": "broadcast", "event": "ping", "payload": {"x": 1}}


@pytest.mark.parametrize(
    "raw", ["not json", "[1,2,3]", '{"topic": 5, "event": "x"}', "42", bytes([9, 0, 0]), bytes([3, 9, 9, 9, 9, 9, 1])]
)
def test_malformed_frames_raise_protocol_error(raw: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode(raw, V2)


def test_encode_v1_has_exactly_four_keys_with_null_ref() -> None:
    text = protocol.encode(Frame("realtime:a", "system", {"x": 1}, None, "3"), V1)
    assert json.loads(text) == {"topic": "realtime:a", "event": "system", "payload": {"x": 1}, "ref": None}


def test_encode_v2_is_an_array_and_reply_copies_refs() -> None:
    request = Frame("phoenix", "heartbeat", {}, "10", None)
    assert protocol.encode(protocol.reply(request, "ok", {}), V2) == (
        '[null,"10","phoenix","phx_reply",{"status":"ok","response":{}}]'
    )


def test_encode_raw_matches_encode() -> None:
    payload = {"ids": [1], "data": {"a": "é"}}
    for vsn in (V1, V2):
        raw = protocol.encode_raw("realtime:t", "postgres_changes", json.dumps(payload), vsn)
        assert json.loads(raw) == json.loads(protocol.encode(Frame("realtime:t", "postgres_changes", payload), vsn))


def test_binary_broadcast_kind_4_layout() -> None:
    data = protocol.encode_binary_broadcast("realtime:room1", "ping", b'{"x":1}', json_payload=True)
    assert data[:5] == bytes([4, 14, 4, 0, 1]) and data.endswith(b'realtime:room1ping{"x":1}')
