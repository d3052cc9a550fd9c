"""Fixed-std recipes frameworks ship are schemes inside the blocks they ship them in (issue 14).

Pre-norm residual blocks in the layouts timm and transformers build, with the inits their own
code draws: timm EdgeNeXt's ``trunc_normal_tf_(std=.02)`` at fan_in 24, an HF config's
``initializer_range = 0.018`` on every projection, timm's fix_init (residual projections
divided by sqrt(2·(layer+1))). Each was IA201 on most of its weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from scipy import stats

from initaudit.audit import audit_file
from initaudit.report.model import FileResult
from tests import _models as M

Draw = Callable[[str, tuple[int, int]], np.ndarray]


def _pre_norm_blocks(draw: Draw, d: int = 24, layers: int = 3) -> onnx.ModelProto:
    """tokens -> Gather -> [LN -> fc1 (d -> 4d) -> GELU -> fc2 -> + residual] x layers."""
    nodes = [helper.make_node("Gather", ["wte", "ids"], ["h0"])]
    inits = [M.tensor("wte", draw("wte", (64, d)))]
    h = "h0"
    for i in range(layers):
        p = f"blocks.{i}"
        inits += [
            M.tensor(f"{p}.norm.weight", np.ones(d, np.float32)),
            M.tensor(f"{p}.norm.bias", np.zeros(d, np.float32)),
            M.tensor(f"{p}.mlp.fc1.weight", draw(f"{p}.mlp.fc1.weight", (d, 4 * d))),
            M.tensor(f"{p}.mlp.fc2.weight", draw(f"{p}.mlp.fc2.weight", (4 * d, d))),
        ]
        nodes += [
            helper.make_node(
                "LayerNormalization", [h, f"{p}.norm.weight", f"{p}.norm.bias"], [f"{p}/n"]
            ),
            helper.make_node("MatMul", [f"{p}/n", f"{p}.mlp.fc1.weight"], [f"{p}/a"]),
            helper.make_node("Gelu", [f"{p}/a"], [f"{p}/g"]),
            helper.make_node("MatMul", [f"{p}/g", f"{p}.mlp.fc2.weight"], [f"{p}/b"]),
            helper.make_node("Add", [h, f"{p}/b"], [f"{p}/out"]),
        ]
        h = f"{p}/out"
    ids = M.value_info("ids", [1, 8], onnx.TensorProto.INT64)
    return M.model(nodes, inits, [ids], [M.value_info(h, None)])


def _audit(tmp_path: Path, m: onnx.ModelProto) -> FileResult:
    result = audit_file(M.save(m, tmp_path / "m.onnx"))
    assert result.error is None
    return result


def _ia201(result: FileResult) -> list[str]:
    return [f.tensor or "" for f in result.findings if f.rule == "IA201"]


def test_timm_trunc_normal_tf_in_pre_norm_blocks(tmp_path: Path) -> None:
    """EdgeNeXt: trunc_normal_tf_(std=.02), truncated at ±2 std, no variance correction."""
    r = M.rng(21)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        z = stats.truncnorm.rvs(-2, 2, size=shape, random_state=r)
        return (0.02 * z).astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw))
    assert _ia201(result) == []
    assert "trunc_normal_tf_" in (result.tensor("blocks.0.mlp.fc1.weight").scheme or "")


def test_a_config_initializer_range_is_the_models_recipe(tmp_path: Path) -> None:
    """An HF config's initializer_range of 0.0134 (as some ship): every Linear and the
    embedding drawn N(0, 0.0134²) by the generic _init_weights."""
    r = M.rng(22)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        return r.normal(0, 0.0134, shape).astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw))
    assert _ia201(result) == []
    assert "one fixed std across the model" in (
        result.tensor("blocks.1.mlp.fc1.weight").scheme or ""
    )


def test_timm_fix_init_residual_projections(tmp_path: Path) -> None:
    """ViT/EVA fix_init: each block's fc2 is trunc_normal_(.02) / sqrt(2·(layer+1))."""
    r = M.rng(23)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        w = r.normal(0, 0.02, shape)
        if name.endswith("fc2.weight"):
            w /= math.sqrt(2 * (int(name.split(".")[1]) + 1))
        return w.astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw, d=48, layers=4))
    assert _ia201(result) == []
    assert "fix_init" in (result.tensor("blocks.2.mlp.fc2.weight").scheme or "")


def test_a_model_wide_std_outside_any_config_is_still_judged(tmp_path: Path) -> None:
    """SAM's vision config ships initializer_range = 1e-10: no recipe, IA201 everywhere."""
    r = M.rng(24)

    def draw(name: str, shape: tuple[int, int]) -> np.ndarray:
        return r.normal(0, 1e-10, shape).astype(np.float32)

    result = _audit(tmp_path, _pre_norm_blocks(draw))
    assert "blocks.0.mlp.fc1.weight" in _ia201(result)
