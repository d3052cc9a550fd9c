"""What a bias or normalization vector was set to: the catalog for IA401.

Biases are zeros (Keras, Flax, HF, timm), U(±1/sqrt(fan_in)) (PyTorch's nn.Linear/Conv default,
with the layer's fan_in), U(±1/sqrt(hidden)) (PyTorch RNNs), zeros with a block of ones (Keras
LSTM unit_forget_bias), a constant (timm's -log(num_classes) head bias) or N(0, 1e-6) (timm's
jax-style MLP biases). Norm scales are ones, or zeros where the forward adds one (Gemma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initaudit.graph.model import Role, WeightSite
from initaudit.stats.moments import TensorStats
from initaudit.stats.values import Values, as_values

TINY_STD = 1e-4  # timm's N(0, 1e-6) MLP biases; below anything a fan-based init gives


@dataclass(frozen=True, kw_only=True)
class VectorFit:
    scheme: str  # readable: zeros, ones, constant(c), pytorch_default, uniform(bound=...), ...
    expected: bool  # a value frameworks use for this role


def fit_vector(site: WeightSite, values: Values | np.ndarray, m: TensorStats) -> VectorFit | None:
    if (
        site.role not in (Role.BIAS, Role.NORM_SCALE, Role.NORM_SHIFT)
        or m.size == 0
        or m.n_nonfinite
    ):
        return None
    lo, hi = m.min or 0.0, m.max or 0.0
    if lo == hi:
        v = lo
        name = "zeros" if v == 0 else "ones" if v == 1 else f"constant({v:.6g})"
        if site.role == Role.NORM_SCALE:
            return VectorFit(scheme=name, expected=v == 1.0)
        if site.role == Role.NORM_SHIFT:
            return VectorFit(scheme=name, expected=v == 0.0)
        # A constant head bias is timm's -log(num_classes) (jax_nlhb) or a deliberate prior.
        return VectorFit(scheme=name, expected=v == 0.0 or _is_log_prior(v, m.size))
    # A bias that varies along two axes is a table added to a sequence or a map (a position
    # embedding folded to the rows a fixed-length input uses, ViT's pos_embed), not one
    # value per unit: judged like the gathered tables.
    if site.role == Role.BIAS and (site.op_type == "Gather" or sum(d > 1 for d in site.shape) >= 2):
        return _bias_table_fit(m)
    if site.role == Role.BIAS:
        return _bias_fit(site, values, m)
    return VectorFit(scheme=f"std={m.std:.3g}", expected=False)


def _bias_table_fit(m: TensorStats) -> VectorFit:
    """A table of biases added to attention logits (relative position bias): frameworks draw
    it zero (timm LeViT), trunc_normal(std=.02) (timm Swin) or N(0, d_model^-0.5) (T5) — a
    centred draw of modest spread; a large or one-sided one is not an init recipe."""
    std, mean = m.std or 0.0, m.mean or 0.0
    label = f"normal-like table (mean={mean:.3g}, std={std:.3g})"
    return VectorFit(scheme=label, expected=std <= 1.0 and abs(mean) <= 0.25 * std + 1e-6)


def _is_log_prior(v: float, n: int) -> bool:
    return n > 1 and abs(v + math.log(n)) < 1e-3 * math.log(n)


def _bias_fit(site: WeightSite, values: Values | np.ndarray, m: TensorStats) -> VectorFit:
    flat = as_values(values).array().reshape(-1)  # a vector: small
    if np.all((flat == 0) | (flat == 1)):
        return VectorFit(
            scheme="zeros with a block of ones (keras unit_forget_bias)", expected=True
        )
    if (m.std or 0.0) < TINY_STD and abs(m.mean or 0.0) < TINY_STD:
        return VectorFit(scheme=f"normal(std={m.std:.2g}) (near zero)", expected=True)
    absmax = max(abs(m.min or 0.0), abs(m.max or 0.0))
    bounds = [
        1.0 / math.sqrt(f) for f in (site.fan_in, site.hidden_size) if f is not None and f > 0
    ]
    for b in bounds:
        # Uniform on ±b: nothing beyond b (fp16 rounding aside), and the spread of a uniform.
        if absmax <= b * (1 + 2**-8) and m.size >= 2 and (m.std or 0) >= b / math.sqrt(3) / 3:
            return VectorFit(scheme=f"pytorch_default (uniform(+-{b:.3g}))", expected=True)
    return VectorFit(scheme=f"values with mean={m.mean:.3g}, std={m.std:.3g}", expected=False)
