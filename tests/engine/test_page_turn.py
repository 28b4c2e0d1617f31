"""Page turning: early turns with a lead, half turns, jumps, and manual navigation that holds."""

from __future__ import annotations

import pytest

from companion.engine.page_turn import PageTurner, PageTurnParams

# three pages with four systems each: systems 0-3 on page 0, 4-7 on page 1, 8-11 on page 2
PAGES = [0] * 4 + [1] * 4 + [2] * 4


def test_single_page_turns_at_the_last_system_with_lead_1() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    for s in range(3):
        assert t.update(s).turned is False
    d = t.update(3)
    assert d.turned and d.first_page == 1 and d.reason == "lead"


def test_lead_2_turns_one_system_earlier() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=2))
    assert not t.update(1).turned
    assert t.update(2).first_page == 1


def test_lead_0_turns_only_on_reaching_the_next_page() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=0))
    assert not t.update(3).turned
    d = t.update(4)
    assert d.turned and d.first_page == 1 and d.reason == "jump"


def test_follower_still_on_the_turned_page_does_not_turn_back() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    t.update(3)
    assert t.first_page == 1
    assert not t.update(3).turned  # the pianist still plays the last system from memory
    assert t.first_page == 1
    d = t.update(0)  # a repeat to the start is a real jump back
    assert d.turned and d.first_page == 0


def test_no_turn_past_the_last_page() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    t.update(8)
    assert t.first_page == 2
    assert not t.update(11).turned
    assert t.first_page == 2


def test_two_pages_half_turn_keeps_the_played_page_visible() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1, two_pages=True))
    assert list(t.visible_pages()) == [0, 1]
    assert not t.update(3).turned  # page 1 is already visible
    d = t.update(7)
    assert d.turned and list(t.visible_pages()) == [1, 2]
    assert 1 in t.visible_pages()


def test_manual_navigation_holds_until_the_performance_reaches_the_view() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    t.update(1)
    t.show_page(2)  # the user looks ahead
    assert t.manual
    assert not t.update(2).turned and t.first_page == 2
    # the performance reaches the page the user shows: following resumes
    assert not t.update(8).turned
    assert not t.manual
    d = t.update(0)
    assert d.turned and d.first_page == 0


def test_follow_gives_the_view_back_to_the_performance() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    t.show_page(2)
    assert not t.update(5).turned
    t.follow()
    d = t.update(5)
    assert d.turned and d.first_page == 1


def test_manual_return_to_the_lead_page_is_not_overridden_at_once() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    t.update(3)
    assert t.first_page == 1
    t.show_page(0)
    assert not t.update(3).turned
    assert t.first_page == 0


def test_navigation_is_clamped_and_layout_switch_keeps_a_valid_view() -> None:
    t = PageTurner(PAGES, 3, PageTurnParams(lead=1))
    assert t.show_page(10) == 2
    assert t.show_page(-3) == 0
    t.show_page(2)
    t.set_layout(two_pages=True)
    assert list(t.visible_pages()) == [1, 2]


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        PageTurner([0, 2, 1], 3)
    with pytest.raises(ValueError):
        PageTurner([0, 5], 3)
    with pytest.raises(IndexError):
        PageTurner(PAGES, 3).update(12)
