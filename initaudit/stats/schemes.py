"""The catalog of init schemes as frameworks really implement them, per tensor.

For a site (role, op, fans, activation) we list every scheme a real framework could have used,
each with its exact distribution (family, std, support). The catalog is the tables below, one
row per recipe, each a formula of the layer's fans, to be read line by line against
../shared/init-reference.md: §1 (PyTorch), §2 (Keras), §3 (JAX/Flax), §4 (HF, timm, GPT-2,
GPT-NeoX, T5), §6 (distribution facts). Gains follow ``torch.nn.init.calculate_gain``.

Schemes are *fan-based* (their std follows the layer's fans: only a gain or mode is chosen)
or *fixed* (a number a user picks: HF's 0.02, Keras' 0.05). A fixed scheme explains a tensor
only when it matches exactly; a fan-based family also bounds what is plausible around it. The
order of the lists is the order of preference on a statistical tie: context first, then
framework defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from initaudit.graph.facts import layer_index
from initaudit.graph.model import End, Kind, ModelFacts, Role, WeightSite
from initaudit.graph.ops import CONV_OPS
from initaudit.stats.model import TN_STD, Family, Scheme
from initaudit.stats.recommend import GAINS

N, U, TN = Family.NORMAL, Family.UNIFORM, Family.TRUNC_NORMAL


@dataclass(frozen=True, kw_only=True)
class Fans:
    """The numbers a recipe's formula reads: the layer's fans, the one its mode picks, and
    the gain."""

    fan_in: int
    fan_out: int
    fan: int  # fan_in or fan_out, by the recipe's mode
    gain: float

    @property
    def avg(self) -> float:
        return (self.fan_in + self.fan_out) / 2.0


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """One catalog row. ``label`` and ``fix`` may name {mode}, {gain}, {nl}, {arg} (the
    kaiming call's nonlinearity arguments) and {gain_arg} (xavier's gain argument).

    ``scale`` is the std for normals and the bound for uniforms (std = bound/sqrt 3), as the
    framework's code writes them; truncated normals give their final std and the fix is
    written from it.
    """

    key: str
    label: str
    family: Family
    scale: Callable[[Fans], float]
    fix: str
    per_gain: bool = True  # one scheme per calculate_gain nonlinearity, targeting it
    fixed: bool = False

    def scheme(self, f: Fans, mode: str, gname: str) -> Scheme:
        nl = gname.split("(")[0]
        arg = f'nonlinearity="{nl}"' + (f", a={gname[11:-1]}" if "(" in gname else "")
        gain_arg = f'nn.init.calculate_gain("{nl}")' if f.gain != 1.0 else "1.0"
        scale = self.scale(f)
        std = scale / math.sqrt(3.0) if self.family == U else scale
        words = {"mode": mode, "gain": gname, "nl": nl, "arg": arg, "gain_arg": gain_arg}
        if self.family == TN:
            sigma = std / TN_STD
            words |= {"sigma": f"{sigma:.4g}", "lo": f"{-2 * sigma:.4g}", "hi": f"{2 * sigma:.4g}"}
        return Scheme(
            key=self.key,
            label=self.label.format(**words),
            family=self.family,
            std=std,
            gain_for=nl if self.per_gain else None,
            fix=self.fix.format(**words),
            fixed=self.fixed,
        )


# PyTorch: nn.Linear/Conv reset_parameters = kaiming_uniform_(a=sqrt 5): U(±1/sqrt(fan_in)).
PYTORCH_DEFAULT = Recipe(
    key="pytorch_default",
    label="pytorch_default (kaiming_uniform a=sqrt(5))",
    family=U,
    scale=lambda f: 1.0 / math.sqrt(f.fan_in),
    fix="keep PyTorch's default reset_parameters()",
    per_gain=False,
)
# torch.nn.init, for every gain, in each mode the layer allows (§1.1).
PER_MODE = (
    Recipe(
        key="kaiming_normal",
        label="kaiming_normal({mode}, {gain})",
        family=N,
        scale=lambda f: f.gain / math.sqrt(f.fan),
        fix='nn.init.kaiming_normal_(w, mode="{mode}", {arg})',
    ),
    Recipe(
        key="kaiming_uniform",
        label="kaiming_uniform({mode}, {gain})",
        family=U,
        scale=lambda f: f.gain / math.sqrt(f.fan) * math.sqrt(3.0),
        fix='nn.init.kaiming_uniform_(w, mode="{mode}", {arg})',
    ),
)
PER_GAIN = (
    Recipe(
        key="xavier_normal",
        label="xavier_normal(gain={gain})",
        family=N,
        scale=lambda f: f.gain / math.sqrt(f.avg),
        fix="nn.init.xavier_normal_(w, gain={gain_arg})",
    ),
    Recipe(
        key="xavier_uniform",
        label="xavier_uniform(gain={gain}) / glorot_uniform",
        family=U,
        scale=lambda f: f.gain / math.sqrt(f.avg) * math.sqrt(3.0),
        fix="nn.init.xavier_uniform_(w, gain={gain_arg})",
    ),
)
# Keras / JAX / Flax variance scaling, truncated normal with the 0.8796 correction (§2, §3):
# the final std is sqrt(scale / n).
_TRUNC_FIX = "nn.init.trunc_normal_(w, std={sigma}, a={lo}, b={hi})"
VARIANCE_SCALING = (
    Recipe(
        key="glorot_normal",
        label="glorot_normal (truncated, keras/flax)",
        family=TN,
        scale=lambda f: math.sqrt(1.0 / f.avg),
        fix=_TRUNC_FIX,
    ),
    Recipe(
        key="he_normal",
        label="he_normal (truncated, keras/flax)",
        family=TN,
        scale=lambda f: math.sqrt(2.0 / f.fan_in),
        fix=_TRUNC_FIX,
    ),
    Recipe(
        key="lecun_normal",
        label="lecun_normal (truncated, keras/flax)",
        family=TN,
        scale=lambda f: math.sqrt(1.0 / f.fan_in),
        fix=_TRUNC_FIX,
    ),
    # GPT-NeoX small_init: N(0, 2/(5d)) (§4.3).
    Recipe(
        key="normal",
        label="small_init normal(std=sqrt(2/(5d))) (gpt-neox)",
        family=N,
        scale=lambda f: math.sqrt(0.4 / f.fan_in),
        fix="GPT-NeoX small_init",
    ),
)
# Gains a VARIANCE_SCALING recipe targets (their scale is fixed, not a calculate_gain choice).
_VS_TARGETS = ("linear", "relu", "selu", None)


def _fixed(key: str, label: str, family: Family, std: float, fix: str) -> Scheme:
    return Scheme(key=key, label=label, family=family, std=std, fix=fix, fixed=True)


def _uniform(key: str, label: str, bound: float, fix: str, fixed: bool = True) -> Scheme:
    return Scheme(key=key, label=label, family=U, std=bound / math.sqrt(3.0), fix=fix, fixed=fixed)


# Fixed stds a user picks (HF's initializer_range, Keras' initializer defaults, §2.1, §4.1).
FIXED = (
    _fixed(
        "normal", "normal(std=0.02) (HF initializer_range)", N, 0.02, "nn.init.normal_(w, std=0.02)"
    ),
    # timm trunc_normal_tf_(std=.02) truncates at ±2 std with no variance correction (final
    # std 0.0176; timm/layers/weight_init.py, edgenext.py:576-586, mvitv2.py:836), as do HF
    # models that call trunc_normal_(std=σ, a=-2σ, b=2σ) (ModernBERT).
    _fixed(
        "trunc_normal",
        "trunc_normal(std=0.02, at 2 std) (timm trunc_normal_tf_)",
        TN,
        0.02 * TN_STD,
        "nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)",
    ),
    # N(0, 0.01): timm's Linear init in MobileViT/byobnet (byobnet.py:1844), torchvision heads.
    _fixed(
        "normal", "normal(std=0.01) (timm/torchvision)", N, 0.01, "nn.init.normal_(w, std=0.01)"
    ),
    _fixed(
        "normal", "normal(std=0.05) (keras RandomNormal)", N, 0.05, "nn.init.normal_(w, std=0.05)"
    ),
    _fixed(
        "trunc_normal",
        "trunc_normal(std=0.05) (keras TruncatedNormal)",
        TN,
        0.05 * TN_STD,
        "nn.init.trunc_normal_(w, std=0.05)",
    ),
    _uniform(
        "uniform",
        "uniform(-0.05, 0.05) (keras RandomUniform)",
        0.05,
        "nn.init.uniform_(w, -0.05, 0.05)",
    ),
)
# Embedding tables: nn.Embedding N(0, 1), HF 0.02, Keras U(±0.05) (§1.4, §4.1, §2.3).
EMBEDDING_DEFAULTS = (
    _fixed(
        "normal",
        "normal(std=1) (pytorch Embedding default)",
        N,
        1.0,
        "keep nn.Embedding's default (normal_(0, 1))",
    ),
    FIXED[0],
    _uniform(
        "uniform",
        "uniform(-0.05, 0.05) (keras Embedding default)",
        0.05,
        "nn.init.uniform_(w, -0.05, 0.05)",
    ),
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
        # fan_out mode: torchvision and timm use it for convolutions, and code that applies
        # one init to the whole model (model.apply(init_fn)) gives it to the Linear head too:
        # kaiming_uniform_(mode="fan_out", nonlinearity="relu") on a 256->32 head is std 0.25,
        # a scheme whose gain suits another activation (IA301), not a mis-scale. Elsewhere a
        # Linear's fan_out mode would only widen what passes as plausible.
        head = site.activation is not None and site.activation.end == End.OUTPUT
        out += (replace(c, context=True) for c in _context_schemes(site, facts, fi))
        out += _fan_table(fi, fo, site.op_type in CONV_OPS or head)
        if site.op_type in ("Einsum", "MatMul") and len(site.shape) >= 3:
            out += _keras_legacy_table(site.shape)
        out += FIXED
    return out


@lru_cache(maxsize=256)
def _fan_table(fan_in: int, fan_out: int, fan_out_mode: bool) -> tuple[Scheme, ...]:
    """The fan-based schemes of one shape: built once (about 40 schemes with their labels and
    fixes), not per tensor; a transformer repeats a handful of shapes."""
    modes = [("fan_in", fan_in)] + ([("fan_out", fan_out)] if fan_out_mode else [])
    out = [
        PYTORCH_DEFAULT.scheme(Fans(fan_in=fan_in, fan_out=fan_out, fan=fan_in, gain=1.0), "", "")
    ]
    for gname, g in GAINS.items():
        for mode, fan in modes:
            fans = Fans(fan_in=fan_in, fan_out=fan_out, fan=fan, gain=g)
            out += (r.scheme(fans, mode, gname) for r in PER_MODE)
        fans = Fans(fan_in=fan_in, fan_out=fan_out, fan=fan_in, gain=g)
        out += (r.scheme(fans, "", gname) for r in PER_GAIN)
    fans = Fans(fan_in=fan_in, fan_out=fan_out, fan=fan_in, gain=1.0)
    for recipe, target in zip(VARIANCE_SCALING, _VS_TARGETS, strict=True):
        out.append(replace(recipe.scheme(fans, "", "linear"), gain_for=target))
    return tuple(out)


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
        trunc_key = "glorot_normal" if name == "glorot" else f"{name}_normal"
        out += [
            Scheme(
                key=key,
                label=f"{name}_uniform ({tag})",
                family=U,
                std=std,
                gain_for=nl,
                fix=f"{fix} {name}_uniform",
                fixed=True,
            ),
            Scheme(
                key=trunc_key,
                label=f"{name}_normal (truncated, {tag})",
                family=TN,
                std=std,
                gain_for=nl,
                fix=f"{fix} {name}_normal",
                fixed=True,
            ),
        ]
    return tuple(out)


def _embedding_schemes(dim: int | None, widths: tuple[int, ...] = ()) -> Iterator[Scheme]:
    yield from EMBEDDING_DEFAULTS
    if dim:
        yield Scheme(  # Flax nn.Embed: variance_scaling(1, fan_in, normal, out_axis=0) (§3.2)
            key="normal",
            label="normal(std=1/sqrt(dim)) (flax Embed default)",
            family=N,
            std=1.0 / math.sqrt(dim),
            fix=f"nn.init.normal_(w, std={dim**-0.5:.4g})",
        )
    for width in widths:
        if width != dim:
            # T5 draws its relative attention bias table (buckets x heads) N(0, d_model^-0.5).
            yield _fixed(
                "normal",
                f"normal(std=d_model^-0.5, d_model={width}) (t5 relative attention bias)",
                N,
                1.0 / math.sqrt(width),
                f"nn.init.normal_(w, std={width**-0.5:.4g})",
            )


def _context_schemes(site: WeightSite, facts: ModelFacts, fi: int) -> Iterator[Scheme]:
    """Schemes tied to where the layer sits: residual outputs, attention queries, recurrences."""
    end = site.activation.end if site.activation else None
    hidden = site.hidden_size
    if hidden is not None and hidden > 0:  # nn.LSTM/GRU/RNN: every parameter U(±1/sqrt(H))
        yield _uniform(
            "pytorch_default",
            "pytorch_default (rnn: U(+-1/sqrt(hidden_size)))",
            1.0 / math.sqrt(hidden),
            "keep nn.LSTM/GRU/RNN defaults",
            fixed=False,
        )
    if end == End.RESIDUAL:
        for L in facts.depths:  # §4.3: GPT-2/Megatron scaled init, GPT-NeoX wang_init
            yield _fixed(
                "normal",
                f"normal(std=0.02/sqrt(2*{L})) (gpt-2 residual projection)",
                N,
                0.02 / math.sqrt(2 * L),
                f"nn.init.normal_(w, std=0.02 / math.sqrt(2 * {L}))",
            )
            # The same depth scaling on a truncated draw (HF ModernBERT's out projections:
            # trunc_normal_(std=σ/sqrt(2L), a=-2σ', b=2σ'), no variance correction).
            yield _fixed(
                "trunc_normal",
                f"trunc_normal(std=0.02/sqrt(2*{L}), at 2 std) (depth-scaled residual projection)",
                TN,
                0.02 / math.sqrt(2 * L) * TN_STD,
                f"s = 0.02 / math.sqrt(2 * {L}); nn.init.trunc_normal_(w, std=s, a=-2*s, b=2*s)",
            )
            yield Scheme(
                key="normal",
                label=f"wang_init normal(std=2/({L}*sqrt(d))) (gpt-neox)",
                family=N,
                std=2.0 / (L * math.sqrt(fi)),
                fix="GPT-NeoX wang_init",
            )
    index = layer_index(site)
    if end == End.RESIDUAL and index is not None:
        # timm ViT/EVA/Hiera fix_init: a block's residual projections (attn.proj, mlp.fc2)
        # divided by sqrt(2·(layer_id + 1)) (timm/models/eva.py:873-879 `rescale`,
        # hiera.py:640), on trunc_normal_(std=.02) (absolute bounds: untruncated in effect).
        std = 0.02 / math.sqrt(2 * (index + 1))
        yield _fixed(
            "normal",
            f"normal(std=0.02/sqrt(2*(layer {index}+1))) (timm fix_init residual projection)",
            N,
            std,
            f"nn.init.trunc_normal_(w, std=.02); w.div_(math.sqrt(2 * {index + 1}))",
        )
    if end == End.ATTENTION:
        # §4.1: T5's q is f·(d_model·d_kv)^-0.5, d_kv the head width (8 in tiny configs).
        for dkv in (8, 16, 32, 64, 128, 256):
            yield Scheme(
                key="normal",
                label=f"normal(std=(d_model*{dkv})^-0.5) (t5 query)",
                family=N,
                std=1.0 / math.sqrt(fi * dkv),
                fix="T5 query init",
            )
    act = site.activation
    if act is not None and act.kind == Kind.SOFTMAX and end == End.GATE:
        # A router's logits (softmax probabilities the network goes on with): HF Switch
        # Transformers draws the router N(0, f·1) (modeling_switch_transformers.py:645,
        # `init.normal_(module.router.classifier.weight, mean=0.0, std=factor * 1)`).
        yield _fixed(
            "normal",
            "normal(std=1) (switch transformers router)",
            N,
            1.0,
            "nn.init.normal_(w, std=1.0)",
        )
    if end == End.OUTPUT and site.fan_out in facts.vocab_sizes:
        # An untied lm_head: T5 draws it N(0, 1) like the embedding.
        yield _fixed(
            "normal", "normal(std=1) (t5 untied lm_head)", N, 1.0, "nn.init.normal_(w, std=1.0)"
        )
    if end == End.OUTPUT and site.fan_out:
        # torchvision classifier heads: VGG, MobileNet, RegNet, SqueezeNet draw N(0, 0.01);
        # GoogLeNet/Inception truncate it at ±2 std; EfficientNet uses U(±1/sqrt(out)).
        yield _fixed(
            "normal",
            "normal(std=0.01) (torchvision classifier head)",
            N,
            0.01,
            "nn.init.normal_(w, std=0.01)",
        )
        yield _fixed(
            "trunc_normal",
            "trunc_normal(std=0.01, at 2 std) (torchvision inception)",
            TN,
            0.01 * TN_STD,
            "nn.init.trunc_normal_(w, std=0.01, a=-0.02, b=0.02)",
        )
        yield _uniform(
            "uniform",
            "uniform(+-1/sqrt(fan_out)) (torchvision efficientnet head)",
            1.0 / math.sqrt(site.fan_out),
            "nn.init.uniform_(w, -1 / math.sqrt(out), 1 / math.sqrt(out))",
            fixed=False,
        )
