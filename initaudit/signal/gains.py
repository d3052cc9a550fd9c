"""How each activation changes the second moment of a signal, forward and backward.

For x ~ N(0, q) the forward factor is E[f(x)²] / q and the backward one E[f'(x)²]: we evaluate
both with 64-point Gauss–Hermite quadrature at the actual q, so saturating functions (tanh,
sigmoid) and scale-dependent ones (GELU, SiLU) get the right value at every depth instead of a
linearization. Values at q = 1 (what README "Signal propagation" lists):

============  =======  ========
activation    forward  backward
============  =======  ========
relu          0.500    0.500
leaky 0.01    0.500    0.500
tanh          0.394    0.464
sigmoid       0.293    0.045
gelu          0.425    0.456
silu          0.356    0.379
mish          0.452    0.479
hardswish     0.332    0.359
elu           0.645    0.663
selu          1.000    1.056
============  =======  ========

(sigmoid's forward moment includes its 0.5 mean: the next layer sees it.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# The 64-point Gauss–Hermite rule for a standard normal: E[f(z)] = sum(WEIGHTS * f(NODES)).
NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(64)
WEIGHTS = WEIGHTS / WEIGHTS.sum()

# math.erf elementwise: the functions here only ever see the 64 quadrature points, where a
# Python loop costs microseconds and scipy.special's import (~0.25 s, every run) is avoided.
_ERF = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of a small array (quadrature points), exact to the last bit."""
    return np.asarray(_ERF(np.asarray(x, dtype=np.float64)), dtype=np.float64)


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: e^-logaddexp(0, -x)."""
    return np.asarray(np.exp(-np.logaddexp(0.0, -x)))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.logaddexp(0.0, x))


def _elu(alpha: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def activation_fn(kind: str, alpha: float | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """The activation ``kind`` as a numpy function (None for kinds without one)."""
    a = 0.01 if alpha is None else alpha
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "relu": lambda x: np.maximum(x, 0.0),
        "relu6": lambda x: np.clip(x, 0.0, 6.0),
        "leaky_relu": lambda x: np.where(x > 0, x, a * x),
        "prelu": lambda x: np.where(x > 0, x, 0.25 * x),
        "elu": _elu(1.0 if alpha is None else alpha),
        "celu": _elu(1.0 if alpha is None else alpha),
        "selu": lambda x: SELU_SCALE * _elu(SELU_ALPHA)(x),
        "tanh": np.tanh,
        "sigmoid": _sigmoid,
        "hardsigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
        "hardswish": lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
        "gelu": _gelu,
        "silu": lambda x: x * _sigmoid(x),
        "softplus": _softplus,
        "mish": lambda x: x * np.tanh(_softplus(x)),
        "softsign": lambda x: x / (1.0 + np.abs(x)),
        "sin": np.sin,
        "abs": np.abs,
    }
    return table.get(kind)


def _derivative(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    h = 1e-4 * np.maximum(1.0, np.abs(x))
    return np.asarray((f(x + h) - f(x - h)) / (2 * h))


def factors(kind: str, alpha: float | None, log10_q: float) -> tuple[float, float] | None:
    """(forward E[f(x)²]/q, backward E[f'(x)²]) for x ~ N(0, 10**log10_q); None for unknown
    kinds. The table above is ``factors(kind, None, 0.0)``; the depth model evaluates the
    same quadrature on each value's own sampled function instead."""
    f = activation_fn(kind, alpha)
    if f is None:
        return None
    q = 10.0**log10_q
    x = math.sqrt(q) * NODES
    fwd = float(np.sum(WEIGHTS * f(x) ** 2)) / q
    bwd = float(np.sum(WEIGHTS * _derivative(f, x) ** 2))
    return fwd, bwd
