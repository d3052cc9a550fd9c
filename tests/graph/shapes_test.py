"""The shape algebra of layout ops, on its own: what fans are computed from after a Reshape,
Transpose, Flatten or (Un)Squeeze between a weight and its op."""

from __future__ import annotations

import pytest

from initaudit.graph.shapes import flattened, reshaped, squeezed, transposed


@pytest.mark.parametrize(
    ("shape", "perm", "want"),
    [
        ((64, 128), None, (128, 64)),  # a tied lm_head's Transpose: reversed by default
        ((2, 3, 4), (0, 2, 1), (2, 4, 3)),
        ((2, 3), (0, 0), None),  # not a permutation
        ((2, 3), (0, 1, 2), None),  # wrong rank
    ],
)
def test_transposed(shape, perm, want) -> None:
    assert transposed(shape, perm) == want


@pytest.mark.parametrize(
    ("shape", "target", "allowzero", "want"),
    [
        ((64, 3, 3, 3), [64, -1], False, (64, 27)),
        ((64, 27), [0, 3, 9], False, (64, 3, 9)),  # 0 copies the input's axis
        ((64, 27), [0, 27], True, None),  # allowzero: a real 0, and the count is wrong
        ((64, 27), [-1, -1], False, None),  # two inferred axes
        ((64, 27), [5, -1], False, None),  # not divisible
        ((64, 27), [64, -2], False, None),
        ((64, 27), None, False, None),  # a dynamic target
        ((6,), [0, 0], False, None),  # 0 beyond the input's rank
    ],
)
def test_reshaped(shape, target, allowzero, want) -> None:
    assert reshaped(shape, target, allowzero) == want


def test_flattened() -> None:
    assert flattened((8, 4, 3, 3), 1) == (8, 36)
    assert flattened((8, 4, 3, 3), -1) == (96, 3)
    assert flattened((8, 4), 0) == (1, 32)


@pytest.mark.parametrize(
    ("shape", "axes", "unsqueeze", "want"),
    [
        ((1, 64, 1), None, False, (64,)),
        ((1, 64, 1), (0,), False, (64, 1)),
        ((1, 64, 1), (-1,), False, (1, 64)),
        ((64,), (0,), True, (1, 64)),
        ((64,), (-1, 0), True, (1, 64, 1)),
        ((64,), None, True, None),  # Unsqueeze needs its axes
        ((64,), (5,), True, None),
    ],
)
def test_squeezed(shape, axes, unsqueeze, want) -> None:
    assert squeezed(shape, axes, unsqueeze) == want
