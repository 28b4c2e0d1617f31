"""Live listening: microphone (or file) to spectrogram frames, without dropping audio.

Use::

    from companion.live import CaptureSession, Channel, StatusEvent, LevelEvent

    session = CaptureSession(cfg.audio, consumer=engine)   # engine: a FrameConsumer
    session.start()                                         # returns at once
    for event in session.channel.poll():                    # from a GUI timer
        ...
    session.stop()

Modules: :mod:`~companion.live.ring_buffer` (callback -> worker hand-off),
:mod:`~companion.live.devices` (listing, choosing, remembering inputs),
:mod:`~companion.live.capture` (the session and its worker),
:mod:`~companion.live.meter` (level, clipping, silence gate),
:mod:`~companion.live.states` (failures as states, user messages),
:mod:`~companion.live.channel` (thread-safe events),
:mod:`~companion.live.file_source` (a file played as if it were a microphone).
"""

from companion.live.capture import CaptureSession, CaptureStats, FrameConsumer, SessionParams
from companion.live.channel import Channel, Event, FramesEvent, LevelEvent, ResultEvent, StatusEvent
from companion.live.devices import DeviceInfo, DeviceNotFound, find_input_device, list_input_devices
from companion.live.file_source import FileBackend, FileSource
from companion.live.meter import LevelMeter, LevelReading, MeterParams
from companion.live.ring_buffer import Gap, RingBuffer
from companion.live.states import CaptureState, Failure, classify_error

__all__ = [
    "CaptureSession",
    "CaptureState",
    "CaptureStats",
    "Channel",
    "DeviceInfo",
    "DeviceNotFound",
    "Event",
    "Failure",
    "FileBackend",
    "FileSource",
    "FrameConsumer",
    "FramesEvent",
    "Gap",
    "LevelEvent",
    "LevelMeter",
    "LevelReading",
    "MeterParams",
    "ResultEvent",
    "RingBuffer",
    "SessionParams",
    "StatusEvent",
    "classify_error",
    "find_input_device",
    "list_input_devices",
]
