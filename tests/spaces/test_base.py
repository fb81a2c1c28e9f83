"""Bulk Hamming pairs against brute force, including keys too wide for one integer."""

from __future__ import annotations

import numpy as np
import pytest

from spaces.base import hamming_pairs


def brute(codes: np.ndarray, radius: int) -> set[tuple[int, int]]:
    dist = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    return {(i, j) for i, j in zip(*np.nonzero(np.triu(dist <= radius, 1)), strict=True)}


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
@pytest.mark.parametrize("cards", [[3] * 4, [5] * 6, [10] * 20, [2**20] * 4])
def test_hamming_pairs_match_brute_force(radius: int, cards: list[int]) -> None:
    rng = np.random.default_rng(radius)
    # Few distinct values per column so that near pairs exist even with huge cardinalities.
    codes = rng.integers(0, 3, size=(150, len(cards))) * (np.array(cards) // 3)
    got = {tuple(p) for p in hamming_pairs(codes, cards, radius).tolist()}
    assert got == brute(codes, radius)


def test_duplicate_rows_pair_at_radius_zero() -> None:
    codes = np.array([[1, 2], [1, 2], [0, 2]])
    assert hamming_pairs(codes, [3, 3], 0).tolist() == [[0, 1]]
    assert hamming_pairs(codes, [3, 3], 1).tolist() == [[0, 1], [0, 2], [1, 2]]
