"""When to turn the page: a Qt-free decision from the followed position.

Why a separate module: the rule must be testable without a GUI and the same
for every front end. A pianist needs to *see the next page before reaching
it*, so the turn happens when the performance enters the last ``lead``
systems of the last visible page, not after it has left the page.

Layouts:

* single page: the view shows page ``p``; entering the last ``lead`` systems
  of ``p`` shows ``p + 1``;
* two pages: the view shows ``p, p + 1``; entering the last ``lead`` systems
  of ``p + 1`` shows ``p + 1, p + 2`` (a half turn: the page being played
  stays in view, on the left).

The performance may also jump (repeats, da capo, the user clicked a system):
a position on a page that is not visible moves the view to it, except right
after an early turn, when the follower still reports the last systems of the
page just turned away from (the pianist plays them from memory, as with a
human page turner).

Manual navigation wins: after the user turns pages by hand, the view stays
where the user put it until the performance reaches a page that is visible
(the follower and the user agree again) or :meth:`PageTurner.follow` is
called (the user clicked a system or pressed "Follow").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageTurnParams:
    lead: int = 1
    """Turn when the performance reaches one of the last ``lead`` systems of the last visible page
    (0: turn only when it reaches the next page)."""
    two_pages: bool = False
    """Two pages side by side (half turns) instead of one."""


@dataclass(frozen=True)
class TurnDecision:
    first_page: int
    """The first visible page after the update (0-based)."""
    turned: bool
    """The view changed because of the performance (not because of the user)."""
    reason: str = ""
    """"lead" (early turn), "jump" (position outside the view), or "" (no change)."""


class PageTurner:
    """Decides the visible page(s) of one document as the followed position moves.

    ``system_pages[i]`` is the page (0-based) of system ``i`` in reading order;
    ``n_pages`` is the document's page count (pages without systems count).
    """

    def __init__(self, system_pages: list[int], n_pages: int, params: PageTurnParams | None = None) -> None:
        if n_pages < 0:
            raise ValueError("n_pages must be >= 0")
        if any(p < 0 or p >= max(n_pages, 1) for p in system_pages):
            raise ValueError("a system lies on a page the document does not have")
        if any(b < a for a, b in zip(system_pages, system_pages[1:])):
            raise ValueError("systems must be in reading order (pages non-decreasing)")
        self.system_pages = list(system_pages)
        self.n_pages = n_pages
        self.params = params or PageTurnParams()
        self.first_page = 0
        self.manual = False
        """True while the user's navigation holds the view."""
        self._turned_from: int | None = None
        self._last_system: int | None = None

    # -- geometry -------------------------------------------------------------------------------
    @property
    def pages_shown(self) -> int:
        return 2 if self.params.two_pages else 1

    def visible_pages(self) -> range:
        last = min(self.n_pages, self.first_page + self.pages_shown)
        return range(self.first_page, last)

    def _clamp(self, page: int) -> int:
        return max(0, min(page, max(0, self.n_pages - self.pages_shown)))

    def systems_on(self, page: int) -> list[int]:
        return [i for i, p in enumerate(self.system_pages) if p == page]

    def _in_lead(self, system: int) -> bool:
        """True when ``system`` is one of the last ``lead`` systems of its page."""
        lead = self.params.lead
        if lead <= 0:
            return False
        on_page = self.systems_on(self.system_pages[system])
        return system in on_page[-lead:]

    # -- user actions ---------------------------------------------------------------------------
    def show_page(self, page: int) -> int:
        """The user navigated by hand: hold this view (see the module docstring)."""
        self.first_page = self._clamp(page)
        self.manual = True
        self._turned_from = None
        return self.first_page

    def next_page(self) -> int:
        return self.show_page(self.first_page + 1)

    def previous_page(self) -> int:
        return self.show_page(self.first_page - 1)

    def follow(self) -> None:
        """Give the view back to the performance (the next update may move it)."""
        self.manual = False

    def set_layout(self, two_pages: bool) -> None:
        self.params = PageTurnParams(lead=self.params.lead, two_pages=two_pages)
        self.first_page = self._clamp(self.first_page)

    def set_lead(self, lead: int) -> None:
        self.params = PageTurnParams(lead=max(0, int(lead)), two_pages=self.params.two_pages)

    # -- the performance ------------------------------------------------------------------------
    def update(self, system: int) -> TurnDecision:
        """The follower says the performance is at ``system``; return what to show."""
        if not 0 <= system < len(self.system_pages):
            raise IndexError(f"no system {system} in this document")
        page = self.system_pages[system]
        visible = self.visible_pages()
        moved = system != self._last_system
        self._last_system = system
        if self.manual:
            if page in visible:
                self.manual = False  # the performance caught up with the user's view
            else:
                return TurnDecision(self.first_page, False)
        if page not in visible:
            if self._turned_from == page and self._in_lead(system):
                return TurnDecision(self.first_page, False)  # still finishing the page turned early
            return self._move(self._clamp(page), "jump", None)
        last_visible = visible[-1] if len(visible) else 0
        if moved:  # a turn happens on arriving at a system, never again while it is played
            if page == last_visible and self._in_lead(system) and page + 1 < self.n_pages:
                return self._move(self._clamp(page + 1 - (self.pages_shown - 1)), "lead", page)
        return TurnDecision(self.first_page, False)

    def _move(self, first: int, reason: str, turned_from: int | None) -> TurnDecision:
        if first == self.first_page:
            return TurnDecision(self.first_page, False)
        self.first_page = first
        self._turned_from = turned_from
        return TurnDecision(first, True, reason)
