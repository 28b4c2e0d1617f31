from __future__ import annotations

import threading
import time

import numpy as np

from companion.live.ring_buffer import Gap, RingBuffer


def test_write_read_wraps_around() -> None:
    rb = RingBuffer(10, channels=2)
    a = np.arange(14, dtype=np.float32).reshape(7, 2)
    assert rb.write(a)
    out, gaps = rb.read(5)
    np.testing.assert_array_equal(out, a[:5])
    b = np.arange(100, 116, dtype=np.float32).reshape(8, 2)
    assert rb.write(b)  # 2 left + 8 = 10: fills exactly, wrapping
    out, gaps = rb.read()
    np.testing.assert_array_equal(out, np.concatenate([a[5:], b]))
    assert gaps == [] and rb.available == 0 and rb.dropped_blocks == 0


def test_mono_1d_blocks_are_accepted() -> None:
    rb = RingBuffer(8)
    rb.write(np.array([1, 2, 3], dtype=np.float32))
    out, _ = rb.read()
    assert out.shape == (3, 1) and out[:, 0].tolist() == [1, 2, 3]


def test_overflow_drops_whole_blocks_and_records_where() -> None:
    rb = RingBuffer(8)
    assert rb.write(np.ones(6, dtype=np.float32))
    assert not rb.write(np.full(4, 2, dtype=np.float32))  # does not fit: dropped whole
    assert not rb.write(np.full(4, 3, dtype=np.float32))  # same spot: one gap, longer
    assert (rb.dropped_blocks, rb.dropped_samples) == (2, 8)
    out, gaps = rb.read()
    assert out[:, 0].tolist() == [1.0] * 6
    assert gaps == []  # the gap sits at the read end: it may still grow
    assert rb.write(np.full(2, 4, dtype=np.float32))
    out, gaps = rb.read()
    assert out[:, 0].tolist() == [4.0, 4.0]
    assert gaps == [Gap(position=6, length=8)]


def test_note_dropped_counts_upstream_overflows() -> None:
    rb = RingBuffer(100)
    rb.write(np.zeros(10, dtype=np.float32))
    rb.note_dropped(32)
    rb.write(np.zeros(10, dtype=np.float32))
    _, gaps = rb.read()
    assert gaps == [Gap(10, 32)] and rb.dropped_blocks == 1


def test_capture_time_maps_positions_to_write_times() -> None:
    rb = RingBuffer(100)
    rb.write(np.zeros(10, dtype=np.float32), now=1.0)
    rb.write(np.zeros(10, dtype=np.float32), now=2.0)
    assert rb.capture_time(5) == 1.0
    assert rb.capture_time(10) == 1.0
    assert rb.capture_time(11) == 2.0
    assert rb.capture_time(21) is None  # not captured yet


def test_concurrent_producer_consumer_loses_nothing() -> None:
    rb = RingBuffer(1000)
    total = 50_000
    block = 97
    got: list[np.ndarray] = []

    def produce() -> None:
        i = 0
        while i < total:
            n = min(block, total - i)
            chunk = np.arange(i, i + n, dtype=np.float32)
            while rb.capacity - rb.available < n:
                time.sleep(0)
            assert rb.write(chunk)
            i += n

    t = threading.Thread(target=produce)
    t.start()
    received = 0
    while received < total:
        out, _ = rb.read()
        if not len(out):
            time.sleep(0)
        got.append(out[:, 0])
        received += len(out)
    t.join()
    assert rb.dropped_blocks == 0
    data = np.concatenate(got)
    np.testing.assert_array_equal(data, np.arange(total, dtype=np.float32))
