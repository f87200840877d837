"""The press's event bytes written without pydantic are exactly the model's (issue #18)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from controller.office.fast_event import FAST_TYPES, IdPool, panic_bytes
from controller.protocol.messages import MAX_PRESSES, MAX_SEQ, Event

offices = st.from_regex(r"[a-z0-9-]{1,32}", fullmatch=True)
walls = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                                                timezone(timedelta(hours=-9, minutes=-30))]))
uuids = st.uuids().map(str)


@given(office=offices, seq=st.integers(1, MAX_SEQ), wall=walls, test=st.booleans(),
       type_=st.sampled_from(sorted(FAST_TYPES)), event_id=uuids, alarm_id=uuids,
       presses=st.none() | st.integers(1, MAX_PRESSES))
def test_the_same_bytes_as_the_model(office: str, seq: int, wall: datetime, test: bool,
                                     type_: str, event_id: str, alarm_id: str,
                                     presses: int | None) -> None:
    fields: dict[str, object] = {"alarm_id": alarm_id}
    if presses is not None:
        fields["presses"] = presses
    fast = panic_bytes(event_id=event_id, office_json=json.dumps(office), seq=seq, wall=wall,
                       type_=type_, test=test, fields=fields)
    model = Event(id=event_id, office=office, seq=seq, ts=wall, type=type_, test=test,
                  **fields).to_bytes()  # type: ignore[arg-type]
    assert fast == model


def test_anything_else_takes_the_models_path() -> None:
    now, aid, eid = datetime.now(UTC), str(uuid.uuid4()), str(uuid.uuid4())

    def fast(**over: object) -> bytes | None:
        args: dict = {"event_id": eid, "office_json": '"eg-101"', "seq": 1, "wall": now,
                      "type_": "panic", "test": False, "fields": {"alarm_id": aid}}
        args.update(over)
        return panic_bytes(**args)

    assert fast() is not None
    for over in ({"type_": "door_opened"}, {"type_": "alarm_acknowledged"},
                 {"seq": 0}, {"seq": MAX_SEQ + 1}, {"seq": True}, {"test": 1},
                 {"wall": now.replace(tzinfo=None)}, {"event_id": eid.upper()},
                 {"event_id": "not-a-uuid"}, {"fields": {}},
                 {"fields": {"alarm_id": aid.replace("-", "")}},
                 {"fields": {"alarm_id": aid, "by": "x"}},
                 {"fields": {"alarm_id": aid, "presses": 0}},
                 {"fields": {"alarm_id": aid, "presses": MAX_PRESSES + 1}},
                 {"fields": {"alarm_id": aid, "presses": "3"}}):
        assert fast(**over) is None, over


def test_the_id_pool_hands_out_fresh_uuid4s_and_refills() -> None:
    pool = IdPool(size=4)
    taken = [pool.take() for _ in range(10)]  # past the pool: made on the spot
    assert len(set(taken)) == 10
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in taken)
    pool.refill()
    assert len({pool.take() for _ in range(4)} | set(taken)) == 14
