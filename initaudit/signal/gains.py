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

# The 64-point Gauss–Hermite rule for a standard normal, E[f(z)] = sum(WEIGHTS * f(NODES)):
# numpy's ``polynomial.hermite_e.hermegauss(64)`` with the weights normalized, tabulated
# (tests/signal/gains_test.py compares), since importing numpy.polynomial and solving for
# the rule cost every run about as much as auditing a small model's first tensor. The rule
# is symmetric, as hermegauss makes it: the positive half, mirrored.
# fmt: off
_HALF_NODES = (
    0.1955889105672755, 0.5868828233052925, 0.9785259089850292, 1.3707539637008053,
    1.76380737694281, 2.1579331167626106, 2.553386870984083, 2.9504354015399628,
    3.3493591797524944, 3.750455385225611, 4.154041371340909, 4.5604587281440505,
    4.970078111602426, 5.383305061164614, 5.800587101829209, 6.222422532626455, 6.64937145634172,
    7.082069830804841, 7.521247661787309, 7.967752981941221, 8.422584092328586, 8.88693390583818,
    9.362252546252307, 9.85033845788215, 10.353475921269002, 10.874651988398703,
    11.417918056820673, 11.989036605128154, 12.596752480605723, 13.255649357397285,
    13.99404990887647, 14.886186143339453,
)
_HALF_WEIGHTS = (
    0.15310831636189684, 0.1314532313175009, 0.09686336389597532, 0.061213638510676474,
    0.033140485961928, 0.015347721995577652, 0.0060684460158915016, 0.002043825838784884,
    0.0005846860830696024, 0.00014160238834136032, 2.8919958244145737e-05, 4.9583797210632245e-06,
    7.099424621906659e-07, 8.437641047541e-08, 8.266084421479323e-09, 6.621423410950699e-10,
    4.296426248985271e-11, 2.2337268555257743e-12, 9.186928787329618e-14, 2.944293146997723e-15,
    7.222153573524514e-17, 1.3269088554685194e-18, 1.778469191112275e-20, 1.6829001120429282e-22,
    1.0785651103547861e-24, 4.435544420470875e-27, 1.0883801541458555e-29, 1.4384921208585856e-32,
    8.786635679310362e-36, 1.9301704298297602e-39, 9.476963190042957e-44, 3.1231879651077347e-49,
)
# fmt: on
NODES = np.concatenate((-np.array(_HALF_NODES[::-1]), np.array(_HALF_NODES)))
WEIGHTS = np.concatenate((np.array(_HALF_WEIGHTS[::-1]), np.array(_HALF_WEIGHTS)))

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
