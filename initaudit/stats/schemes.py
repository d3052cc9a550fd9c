"""The catalog of init schemes as frameworks really implement them, per tensor.

For a site (role, op, fans, activation) we list every scheme a real framework could have used,
each with its exact distribution (family, std, support). Formulas and sources:
../shared/init-reference.md §1 (PyTorch), §2 (Keras), §3 (JAX/Flax), §4 (HF, timm, GPT-2,
GPT-NeoX, T5), §6 (distribution facts). Gains follow ``torch.nn.init.calculate_gain``.

Schemes are *fan-based* (their std follows the layer's fans: only a gain or mode is chosen)
or *fixed* (a number a user picks: HF's 0.02, Keras' 0.05). A fixed scheme explains a tensor
only when it matches exactly; a fan-based family also bounds what is plausible around it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from initaudit.graph.model import ModelFacts, Role, WeightSite
from initaudit.graph.ops import CONV_OPS

# std of a standard normal truncated at ±2: Keras/JAX/Flax/timm divide by it (§6).
TN_STD = 0.87962566103423978
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


@dataclass(frozen=True)
class Scheme:
    """One concrete distribution a framework draws from, for this tensor's fans."""

    key: str  # stable family of schemes: pytorch_default, kaiming_normal, xavier_uniform, ...
    label: str  # readable, with parameters: "kaiming_normal(fan_in, relu)"
    family: str  # uniform | normal | trunc_normal
    std: float
    gain_for: str | None = None  # the nonlinearity the gain targets (for IA301)
    fix: str = ""  # how to get it in PyTorch, for messages
    fixed: bool = False  # a chosen number, not derived from the fans
    context: bool = False  # drawn so because of where the layer sits (T5 query, GPT-2 residual)

    @property
    def bound(self) -> float:
        """Support half-width: exact for uniform, the truncation point for trunc_normal."""
        if self.family == "uniform":
            return self.std * math.sqrt(3.0)
        if self.family == "trunc_normal":
            return 2.0 * self.std / TN_STD
        return math.inf


def _u(
    key: str, label: str, bound: float, gain_for: str | None, fix: str, fixed: bool = False
) -> Scheme:
    return Scheme(key, label, "uniform", bound / math.sqrt(3.0), gain_for, fix, fixed)


def _n(label: str, std: float, fix: str, fixed: bool = True, key: str = "normal") -> Scheme:
    return Scheme(key, label, "normal", std, None, fix, fixed)


def _fan_schemes(fan_in: int, fan_out: int, fan_out_mode: bool) -> Iterator[Scheme]:
    avg = (fan_in + fan_out) / 2.0
    yield _u(
        "pytorch_default",
        "pytorch_default (kaiming_uniform a=sqrt(5))",
        1.0 / math.sqrt(fan_in),
        None,
        "keep PyTorch's default reset_parameters()",
    )
    modes = [("fan_in", fan_in)] + ([("fan_out", fan_out)] if fan_out_mode else [])
    for gname, g in GAINS.items():
        nl = gname.split("(")[0]
        arg = f'nonlinearity="{nl}"' + (f", a={gname[11:-1]}" if "(" in gname else "")
        for mode, fan in modes:
            std = g / math.sqrt(fan)
            yield Scheme(
                "kaiming_normal",
                f"kaiming_normal({mode}, {gname})",
                "normal",
                std,
                nl,
                f'nn.init.kaiming_normal_(w, mode="{mode}", {arg})',
            )
            yield _u(
                "kaiming_uniform",
                f"kaiming_uniform({mode}, {gname})",
                std * math.sqrt(3.0),
                nl,
                f'nn.init.kaiming_uniform_(w, mode="{mode}", {arg})',
            )
        gain_arg = f'nn.init.calculate_gain("{nl}")' if g != 1.0 else "1.0"
        std = g / math.sqrt(avg)
        yield Scheme(
            "xavier_normal",
            f"xavier_normal(gain={gname})",
            "normal",
            std,
            nl,
            f"nn.init.xavier_normal_(w, gain={gain_arg})",
        )
        yield _u(
            "xavier_uniform",
            f"xavier_uniform(gain={gname}) / glorot_uniform",
            std * math.sqrt(3.0),
            nl,
            f"nn.init.xavier_uniform_(w, gain={gain_arg})",
        )
    # Keras / JAX / Flax variance scaling, truncated normal with the 0.8796 correction (§2, §3).
    for key, scale, fan, nl in (
        ("glorot_normal", 1.0, avg, "linear"),
        ("he_normal", 2.0, fan_in, "relu"),
        ("lecun_normal", 1.0, fan_in, "selu"),
    ):
        std = math.sqrt(scale / fan)
        sigma = std / TN_STD
        yield Scheme(
            key,
            f"{key} (truncated, keras/flax)",
            "trunc_normal",
            std,
            nl,
            f"nn.init.trunc_normal_(w, std={sigma:.4g}, a={-2 * sigma:.4g}, b={2 * sigma:.4g})",
        )
    yield _n(
        "small_init normal(std=sqrt(2/(5d))) (gpt-neox)",
        math.sqrt(0.4 / fan_in),
        "GPT-NeoX small_init",
        fixed=False,
    )


def _fixed_schemes() -> Iterator[Scheme]:
    yield _n("normal(std=0.02) (HF initializer_range)", 0.02, "nn.init.normal_(w, std=0.02)")
    yield _n("normal(std=0.05) (keras RandomNormal)", 0.05, "nn.init.normal_(w, std=0.05)")
    yield Scheme(
        "trunc_normal",
        "trunc_normal(std=0.05) (keras TruncatedNormal)",
        "trunc_normal",
        0.05 * TN_STD,
        None,
        "nn.init.trunc_normal_(w, std=0.05)",
        True,
    )
    yield _u(
        "uniform",
        "uniform(-0.05, 0.05) (keras RandomUniform)",
        0.05,
        None,
        "nn.init.uniform_(w, -0.05, 0.05)",
        fixed=True,
    )


def candidates(site: WeightSite, facts: ModelFacts) -> list[Scheme]:
    """Every scheme a framework could have produced for this site (empty: no basis to judge).

    Context-specific schemes come first: on a statistical tie they are the better explanation.
    """
    fi, fo = site.fan_in, site.fan_out
    out: list[Scheme] = []
    if site.role == Role.EMBEDDING:
        out += _embedding_schemes(fi, facts.widths)
        if fi and fo:
            out += _fan_table(fi, fo, False)
    if site.role in (Role.WEIGHT, Role.RECURRENT) and fi and fo:
        conv = site.op_type in CONV_OPS
        out += (replace(c, context=True) for c in _context_schemes(site, facts, fi))
        out += _fan_table(fi, fo, conv)
        if site.op_type in ("Einsum", "MatMul") and len(site.shape) >= 3:
            out += _keras_legacy_table(site.shape)
        out += _fixed_schemes()
    return out


@lru_cache(maxsize=256)
def _fan_table(fan_in: int, fan_out: int, fan_out_mode: bool) -> tuple[Scheme, ...]:
    """The fan-based schemes of one shape: built once (about 40 schemes with their labels and
    fixes), not per tensor; a transformer repeats a handful of shapes."""
    return tuple(_fan_schemes(fan_in, fan_out, fan_out_mode))


@lru_cache(maxsize=64)
def _keras_legacy_table(shape: tuple[int, ...]) -> tuple[Scheme, ...]:
    """Keras' variance-scaling defaults with the fans Keras < 3.15 gave EinsumDense kernels.

    Before Keras 3.15 (commit 534a1e73), compute_fans applied the conv rule to any kernel of
    rank > 2: receptive = prod(shape[:-2]), fan_in = shape[-2]·receptive, fan_out =
    shape[-1]·receptive. A MultiHeadAttention query kernel (d_model, heads, head_dim) got
    fan_in = heads·d_model instead of d_model, so its glorot_uniform default is several times
    smaller than the true fans give. That is a framework default, not the user's mistake:
    init-reference.md §2.2 says to accept both. Fixed schemes: they explain a tensor only by
    matching it, and are never offered as the fix.
    """
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    if not fan_in or not fan_out:
        return ()
    avg = (fan_in + fan_out) / 2.0
    tag = "keras < 3.15 EinsumDense fans"
    fix = "upgrade to Keras >= 3.15 (EinsumDense fans fixed) or keep"
    out = []
    for key, name, scale, fan, nl in (
        ("xavier_uniform", "glorot", 1.0, avg, "linear"),
        ("kaiming_uniform", "he", 2.0, fan_in, "relu"),
        ("lecun_uniform", "lecun", 1.0, fan_in, "selu"),
    ):
        std = math.sqrt(scale / fan)
        label = f"{name}_uniform ({tag})"
        out.append(Scheme(key, label, "uniform", std, nl, f"{fix} {name}_uniform", True))
        trunc_key = "glorot_normal" if name == "glorot" else f"{name}_normal"
        label = f"{name}_normal (truncated, {tag})"
        out.append(Scheme(trunc_key, label, "trunc_normal", std, nl, f"{fix} {name}_normal", True))
    return tuple(out)


def _embedding_schemes(dim: int | None, widths: tuple[int, ...] = ()) -> Iterator[Scheme]:
    yield _n(
        "normal(std=1) (pytorch Embedding default)",
        1.0,
        "keep nn.Embedding's default (normal_(0, 1))",
    )
    yield _n("normal(std=0.02) (HF initializer_range)", 0.02, "nn.init.normal_(w, std=0.02)")
    yield _u(
        "uniform",
        "uniform(-0.05, 0.05) (keras Embedding default)",
        0.05,
        None,
        "nn.init.uniform_(w, -0.05, 0.05)",
        fixed=True,
    )
    if dim:
        yield _n(
            "normal(std=1/sqrt(dim)) (flax Embed default)",
            1.0 / math.sqrt(dim),
            f"nn.init.normal_(w, std={dim**-0.5:.4g})",
            fixed=False,
        )
    for width in widths:
        if width != dim:
            # T5 draws its relative attention bias table (buckets x heads) N(0, d_model^-0.5).
            yield _n(
                f"normal(std=d_model^-0.5, d_model={width}) (t5 relative attention bias)",
                1.0 / math.sqrt(width),
                f"nn.init.normal_(w, std={width**-0.5:.4g})",
            )


def _context_schemes(site: WeightSite, facts: ModelFacts, fi: int) -> Iterator[Scheme]:
    """Schemes tied to where the layer sits: residual outputs, attention queries, recurrences."""
    end = site.activation.end if site.activation else None
    hidden = site.hidden_size
    if hidden is not None and hidden > 0:
        yield _u(
            "pytorch_default",
            "pytorch_default (rnn: U(+-1/sqrt(hidden_size)))",
            1.0 / math.sqrt(hidden),
            None,
            "keep nn.LSTM/GRU/RNN defaults",
        )
    if end == "residual":
        for L in facts.depths:
            yield _n(
                f"normal(std=0.02/sqrt(2*{L})) (gpt-2 residual projection)",
                0.02 / math.sqrt(2 * L),
                f"nn.init.normal_(w, std=0.02 / math.sqrt(2 * {L}))",
            )
            yield _n(
                f"wang_init normal(std=2/({L}*sqrt(d))) (gpt-neox)",
                2.0 / (L * math.sqrt(fi)),
                "GPT-NeoX wang_init",
                fixed=False,
            )
    if end == "attention":
        for dkv in (32, 64, 128):
            yield _n(
                f"normal(std=(d_model*{dkv})^-0.5) (t5 query)",
                1.0 / math.sqrt(fi * dkv),
                "T5 query init",
                fixed=False,
            )
    if end == "output" and site.fan_out in facts.vocab_sizes:
        # An untied lm_head: T5 draws it N(0, 1) like the embedding.
        yield _n("normal(std=1) (t5 untied lm_head)", 1.0, "nn.init.normal_(w, std=1.0)")
    if end == "output" and site.fan_out:
        # torchvision classifier heads: VGG, MobileNet, RegNet, SqueezeNet draw N(0, 0.01);
        # GoogLeNet/Inception truncate it at ±2 std; EfficientNet uses U(±1/sqrt(out)).
        yield _n(
            "normal(std=0.01) (torchvision classifier head)", 0.01, "nn.init.normal_(w, std=0.01)"
        )
        yield Scheme(
            "trunc_normal",
            "trunc_normal(std=0.01, at 2 std) (torchvision inception)",
            "trunc_normal",
            0.01 * TN_STD,
            None,
            "nn.init.trunc_normal_(w, std=0.01, a=-0.02, b=0.02)",
            True,
        )
        yield _u(
            "uniform",
            "uniform(+-1/sqrt(fan_out)) (torchvision efficientnet head)",
            1.0 / math.sqrt(site.fan_out),
            None,
            "nn.init.uniform_(w, -1 / math.sqrt(out), 1 / math.sqrt(out))",
        )


def recommended(site: WeightSite) -> Scheme | None:
    """The textbook scheme for this layer's activation: what a fix should use."""
    fi, fo = site.fan_in, site.fan_out
    if not fi or not fo or site.role not in (Role.WEIGHT, Role.RECURRENT):
        return None
    act = site.activation
    kind = act.kind if act else "unknown"
    if kind in (
        "relu",
        "leaky_relu",
        "prelu",
        "elu",
        "celu",
        "gelu",
        "silu",
        "mish",
        "softplus",
        "hardswish",
        "relu6",
    ):
        slope = act.alpha if act is not None and kind == "leaky_relu" else None
        gain = leaky_gain(slope) if slope is not None else SQRT2
        nl = (
            f'nonlinearity="leaky_relu", a={slope:g}'
            if slope is not None
            else 'nonlinearity="relu"'
        )
        return Scheme(
            "kaiming_normal",
            f"kaiming_normal(fan_in, {kind})",
            "normal",
            gain / math.sqrt(fi),
            "relu",
            f"nn.init.kaiming_normal_(w, {nl})",
        )
    if kind == "tanh":
        return _u(
            "xavier_uniform",
            "xavier_uniform(gain=tanh)",
            5.0 / 3.0 * math.sqrt(6.0 / (fi + fo)),
            "tanh",
            'nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))',
        )
    if kind == "selu":
        return _n(
            "lecun_normal",
            1.0 / math.sqrt(fi),
            'nn.init.kaiming_normal_(w, nonlinearity="linear")',
            False,
            "lecun_normal",
        )
    return _u(
        "xavier_uniform",
        "xavier_uniform(gain=linear)",
        math.sqrt(6.0 / (fi + fo)),
        "linear",
        "nn.init.xavier_uniform_(w)",
    )
