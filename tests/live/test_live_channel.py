from __future__ import annotations

import threading

from companion.live.channel import Channel, StatusEvent
from companion.live.states import CaptureState


def _status(i: int) -> StatusEvent:
    return StatusEvent(CaptureState.RUNNING, f"m{i}")


def test_poll_returns_events_in_order_and_bounded() -> None:
    ch = Channel(maxlen=5)
    for i in range(8):
        ch.publish(_status(i))
    assert ch.dropped_events == 3
    assert [e.message for e in ch.poll(2)] == ["m3", "m4"]
    assert [e.message for e in ch.poll()] == ["m5", "m6", "m7"]
    assert ch.poll() == [] and ch.status.message == "m7"


def test_subscribers_get_events_and_a_broken_one_does_not_stop_others() -> None:
    ch = Channel()
    seen: list[str] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    ch.subscribe(broken)
    unsubscribe = ch.subscribe(lambda e: seen.append(e.message))  # type: ignore[union-attr]
    ch.publish(_status(1))
    unsubscribe()
    ch.publish(_status(2))
    assert seen == ["m1"]


def test_publish_from_many_threads() -> None:
    ch = Channel(maxlen=10_000)
    threads = [threading.Thread(target=lambda k=k: [ch.publish(_status(k * 1000 + i)) for i in range(500)]) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ch.poll()) == 2000
