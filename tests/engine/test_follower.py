from __future__ import annotations

import numpy as np
import pytest

from companion.engine.follower import SystemFollower


def scores_for(n: int, target: int | None, rng: np.random.Generator, hi: float = 0.8) -> np.ndarray:
    s = rng.normal(0.1, 0.08, size=n)
    if target is not None:
        s[target] = hi + rng.normal(0, 0.03)
    return s


def test_follows_forward_through_a_piece() -> None:
    rng = np.random.default_rng(0)
    f = SystemFollower([6, 8, 5])
    path = [7 + i // 4 for i in range(24)]  # document 1 systems 0..5, 4 hops each
    hits = 0
    for flat in path:
        f.update(scores_for(19, flat, rng))
        doc, sys, _ = f.best_system()
        hits += (doc, sys) == (1, flat - 6)
    assert hits >= 22
    assert f.document_probabilities().argmax() == 1
    assert f.unknown_probability < 0.05


def test_noisy_evidence_is_smoothed() -> None:
    rng = np.random.default_rng(1)
    f = SystemFollower([10, 10])
    path = [i // 3 for i in range(30)]
    correct = 0
    for t, flat in enumerate(path):
        target = flat if t % 4 else int(rng.integers(0, 20))  # every 4th hop points elsewhere
        f.update(scores_for(20, target, rng))
        correct += f.best_system()[:2] == (0, flat)
    assert correct >= 25


def test_repeat_and_piece_switch() -> None:
    rng = np.random.default_rng(2)
    f = SystemFollower([5, 5])
    for flat in [0, 0, 1, 1, 2, 2, 0, 0, 0, 1, 1]:  # a repeat back to system 0
        f.update(scores_for(10, flat, rng))
    assert f.best_system()[:2] == (0, 1)
    for _ in range(6):  # the player starts the other piece
        f.update(scores_for(10, 7, rng))
    assert f.best_system()[:2] == (1, 2)


def test_silence_and_noise_are_not_identified() -> None:
    rng = np.random.default_rng(3)
    f = SystemFollower([5, 5, 5])
    for _ in range(20):
        f.update(scores_for(15, None, rng))  # nothing matches
    assert f.unknown_probability > 0.9
    for _ in range(6):
        f.update(scores_for(15, 3, rng))
    assert f.best_system()[:2] == (0, 3)
    for _ in range(12):
        f.update(np.zeros(15), active=False)  # silence
    assert f.unknown_probability > 0.9


def test_user_jump_and_bad_input() -> None:
    f = SystemFollower([3, 4])
    f.jump_to(1, 2)
    assert f.best_system()[:2] == (1, 2)
    with pytest.raises(IndexError):
        f.jump_to(0, 5)
    with pytest.raises(ValueError):
        f.update(np.zeros(3))
    assert abs(f.posterior.sum() - 1) < 1e-9
