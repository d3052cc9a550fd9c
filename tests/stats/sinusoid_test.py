"""Sinusoidal position tables are recognized in every common layout, random tables never."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from initaudit.audit import audit_file
from initaudit.stats.decode import widener
from initaudit.stats.sinusoid import is_sinusoidal
from initaudit.stats.values import Values
from tests import _models as M

POSITIONS, DIM = 64, 32


def _angles(positions: int = POSITIONS, dim: int = DIM) -> np.ndarray:
    pos = np.arange(positions)[:, None]
    return pos / np.power(10000.0, 2 * (np.arange(dim) // 2) / dim)[None, :]


def vaswani() -> np.ndarray:
    """Interleaved: sin on even features, cos on odd (Attention Is All You Need)."""
    a = _angles()
    out = np.empty_like(a)
    out[:, 0::2], out[:, 1::2] = np.sin(a[:, 0::2]), np.cos(a[:, 1::2])
    return out


def halves() -> np.ndarray:
    """sin in the first half of the features, cos in the second (Marian, tensor2tensor)."""
    a = _angles()
    return np.concatenate([np.sin(a[:, 0::2]), np.cos(a[:, 1::2])], axis=1)


def fairseq() -> np.ndarray:
    """fairseq: log-spaced timescales in halves, and the padding row (1) zeroed."""
    half = DIM // 2
    freq = np.exp(np.arange(half) * -(np.log(10000.0) / (half - 1)))
    a = np.arange(POSITIONS)[:, None] * freq[None, :]
    out = np.concatenate([np.sin(a), np.cos(a)], axis=1)
    out[1] = 0.0
    return out


def relative() -> np.ndarray:
    """ESPnet/HF Conformer ``RelPositionalEncoding``: positions T-1 .. 0 .. -(T-1) (the
    positive half flipped, then the negative one), stored [1, 2T-1, d] and, constant-folded
    by the exporter, fed to linear_pos (modeling_fastspeech2_conformer.py:721-735)."""
    half = (POSITIONS + 1) // 2
    a = (
        np.arange(half - 1, -half, -1)[:, None]
        / np.power(10000.0, 2 * (np.arange(DIM) // 2) / DIM)[None, :]
    )
    out = np.empty_like(a)
    out[:, 0::2], out[:, 1::2] = np.sin(a[:, 0::2]), np.cos(a[:, 1::2])
    return out[None]


def _check(table: np.ndarray, dtype: type = np.float32, name: str = "float") -> bool:
    t = table.astype(dtype)
    lo, hi = float(t.min()), float(t.max())
    return is_sinusoidal(Values(t, widener(t.dtype)), name, lo, hi)


@pytest.mark.parametrize("table", [vaswani, halves, fairseq, relative])
def test_position_tables_are_recognized(table) -> None:
    assert _check(table())
    assert _check(table(), np.float16, "float16")
    assert _check(table(), np.float64, "double")


@pytest.mark.parametrize(
    "table",
    [
        lambda r: r.uniform(-1, 1, (POSITIONS, DIM)),
        lambda r: r.normal(0, 0.02, (POSITIONS, DIM)),
        lambda r: r.normal(0, 0.3, (POSITIONS, DIM)).clip(-1, 1),
        lambda r: vaswani() + r.normal(0, 0.01, (POSITIONS, DIM)),  # learned from a sinusoid
    ],
    ids=["uniform", "normal_002", "clipped_normal", "trained_from_sinusoid"],
)
def test_drawn_tables_are_not(table) -> None:
    assert not _check(table(np.random.default_rng(1)))


def test_a_sinusoidal_position_gather_is_not_an_offset(tmp_path: Path) -> None:
    """Marian's table has a positive mean (its cosine half): a computed table, not a draw."""
    m = M.model(
        [helper.make_node("Gather", ["pe", "pos"], ["y"])],
        [M.tensor("pe", halves().astype(np.float32))],
        [M.value_info("pos", ["T"], TensorProto.INT64)],
        [M.value_info("y", None)],
    )
    result = audit_file(M.save(m, tmp_path / "m.onnx"))
    (t,) = result.tensors
    assert t.scheme == "sinusoidal position table"
    assert [f.rule for f in result.findings if f.severity.label != "info"] == []
