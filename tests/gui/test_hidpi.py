"""On a high-DPI screen pages are drawn at device resolution (sharp), not scaled up.

In-process, with the canvas's device pixel ratio forced to 2 (starting a
second Qt process with QT_SCALE_FACTOR=2 gives the same result, checked by
hand, but costs 15 s of test time on a loaded machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from gui_helpers import make_score_pdf  # noqa: E402


def test_pages_are_drawn_at_device_resolution(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    from companion.gui.score_view import ScoreCanvas

    monkeypatch.setattr(ScoreCanvas, "devicePixelRatioF", lambda self: 2.0)
    pdf = make_score_pdf(tmp_path / "score.pdf", 1, seed=3)
    window.open_pdf(pdf)
    canvas = window.score.canvas
    canvas.repaint()

    def wanted() -> int:
        return int(canvas.page_rects()[0].width() * 2)

    qtbot.waitUntil(lambda: window.cache.get_cached(str(pdf), 0, wanted()) is not None, timeout=30000)
    image = window.cache.get_cached(str(pdf), 0, wanted())
    rect_w = canvas.page_rects()[0].width()
    assert 2 * rect_w - 1 <= image.width() <= 2 * rect_w + 64
