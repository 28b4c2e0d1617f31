"""PyInstaller runtime hook: let ``sounddevice`` find the PortAudio bundled with the app.

Why: on Linux ``sounddevice`` asks ``ctypes.util.find_library('portaudio')``,
which only searches the system; the app carries ``libportaudio.so.2`` so that
it runs where PortAudio is not installed.
"""

import ctypes.util
import glob
import os
import sys

if sys.platform.startswith("linux"):
    _system_find_library = ctypes.util.find_library

    def _find_library(name: str):
        hits = sorted(glob.glob(os.path.join(sys._MEIPASS, f"lib{name}.so*")))
        return hits[0] if hits else _system_find_library(name)

    ctypes.util.find_library = _find_library
