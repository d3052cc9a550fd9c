"""The textbook scheme for a layer's activation: what a fix suggests, and the gains
``torch.nn.init.calculate_gain`` gives (init-reference §1.2)."""

from __future__ import annotations

import math

from initaudit.graph.model import Kind, Role, WeightSite
from initaudit.stats.model import Family, Scheme

SQRT2 = math.sqrt(2.0)


def leaky_gain(slope: float) -> float:
    return math.sqrt(2.0 / (1.0 + slope * slope))


# Gains a user reaches through calculate_gain / Keras' scale, by nonlinearity name.
GAINS: dict[str, float] = {
    "linear": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": SQRT2,
    "selu": 0.75,
    "leaky_relu(0.01)": leaky_gain(0.01),
    "leaky_relu(0.1)": leaky_gain(0.1),
    "leaky_relu(0.2)": leaky_gain(0.2),
    "leaky_relu(0.3)": leaky_gain(0.3),
}


# Activations whose gain is ReLU's (GELU & co. have no official gain; He's sqrt 2 is what
# frameworks use for them).
RELU_LIKE = frozenset(
    {
        Kind.RELU,
        Kind.LEAKY_RELU,
        Kind.PRELU,
        Kind.ELU,
        Kind.CELU,
        Kind.GELU,
        Kind.SILU,
        Kind.MISH,
        Kind.SOFTPLUS,
        Kind.HARDSWISH,
        Kind.RELU6,
    }
)


def recommended(site: WeightSite) -> Scheme | None:
    """The textbook scheme for this layer's activation: what a fix should use."""
    fi, fo = site.fan_in, site.fan_out
    if not fi or not fo or site.role not in (Role.WEIGHT, Role.RECURRENT):
        return None
    act = site.activation
    kind = act.kind if act else Kind.UNKNOWN
    if kind in RELU_LIKE:
        slope = act.alpha if act is not None and kind == Kind.LEAKY_RELU else None
        gain = leaky_gain(slope) if slope is not None else SQRT2
        nl = (
            f'nonlinearity="leaky_relu", a={slope:g}'
            if slope is not None
            else 'nonlinearity="relu"'
        )
        return Scheme(
            key="kaiming_normal",
            label=f"kaiming_normal(fan_in, {kind})",
            family=Family.NORMAL,
            std=gain / math.sqrt(fi),
            gain_for="relu",
            fix=f"nn.init.kaiming_normal_(w, {nl})",
        )
    if kind == Kind.TANH:
        return _uniform(
            "xavier_uniform(gain=tanh)",
            5.0 / 3.0 * math.sqrt(6.0 / (fi + fo)),
            "tanh",
            'nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))',
        )
    if kind == Kind.SELU:
        return Scheme(
            key="lecun_normal",
            label="lecun_normal",
            family=Family.NORMAL,
            std=1.0 / math.sqrt(fi),
            fix='nn.init.kaiming_normal_(w, nonlinearity="linear")',
        )
    return _uniform(
        "xavier_uniform(gain=linear)",
        math.sqrt(6.0 / (fi + fo)),
        "linear",
        "nn.init.xavier_uniform_(w)",
    )


def _uniform(label: str, bound: float, gain_for: str, fix: str) -> Scheme:
    return Scheme(
        key="xavier_uniform",
        label=label,
        family=Family.UNIFORM,
        std=bound / math.sqrt(3.0),
        gain_for=gain_for,
        fix=fix,
    )
