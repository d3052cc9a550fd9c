"""Identify the init scheme a tensor was drawn from, with scipy goodness-of-fit tests.

Decision procedure (README "How schemes are identified"):

1. Exact structure first, because it is decisive where moments are not: constant tensors,
   identity/dirac, and orthogonality (W·Wᵀ = g²·I on sampled rows, §6 of init-reference).
2. On a deterministic subsample (ties from fp16/bf16/quantized storage broken), a one-sample
   Kolmogorov–Smirnov statistic D against each catalog scheme whose std is within a factor 1.6
   of the observed one, at the scheme's *exact* scale (not a fitted one): D is small only when
   both the shape (uniform, normal, truncated normal) and the scale match.
3. At the sample sizes used every p-value is tiny for any real deviation, so the acceptance
   rule is an equivalence margin, not a p-value: a scheme matches when
   D <= D_crit(n, alpha=0.001) + 0.01. 0.01 in D is about a 2.5% error in scale for a normal
   and the N-vs-truncated-normal distance is 0.017, so storage rounding passes and different
   schemes do not. The same test with a free scale tells whether the values look like any
   init family at all (margin +0.03; otherwise IA302).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from initaudit.graph.model import Kind, ModelFacts, WeightSite
from initaudit.stats import distinct, dists
from initaudit.stats.dists import family_cdf, ks_statistic
from initaudit.stats.kolmogorov import critical_value
from initaudit.stats.model import (
    NO_FIT,
    RANDOM_FAMILIES,
    SINUSOIDAL,
    TN_STD,
    Family,
    Scheme,
    SchemeFit,
)
from initaudit.stats.moments import TensorStats
from initaudit.stats.sample import break_ties, subsample
from initaudit.stats.schemes import candidates
from initaudit.stats.sinusoid import is_sinusoidal
from initaudit.stats.structure import ORTHO_TOL, constant_fit, identity_fit, orthogonal_fit
from initaudit.stats.values import Values, as_values

MIN_N = 32  # fewer values than this: no guess
MATCH_MARGIN = 0.01
FAMILY_MARGIN = 0.03
SCALE_WINDOW = 1.6
TIE_NATS = 2.0


def fit_scheme(
    site: WeightSite,
    values: Values | np.ndarray,
    m: TensorStats,
    facts: ModelFacts,
    extra: Sequence[Scheme] = (),
) -> SchemeFit:
    """The scheme the values were drawn from; ``extra`` are schemes of this model to try
    first (its shared fixed std, stats/shared.py)."""
    if m.size == 0 or m.n_nonfinite or m.std is None or m.mean is None:
        return NO_FIT
    if m.min == m.max:
        return constant_fit(m.min or 0.0)
    if m.size < MIN_N:
        return NO_FIT
    values = as_values(values)
    mat = _matrix_view(site, values)
    # Without NaN (checked above), the whole tensor's non-zeros and std are known already.
    whole = mat is values
    exact = identity_fit(mat, m.size - m.n_zero if whole else None) or orthogonal_fit(
        mat, ORTHO_TOL.get(site.dtype), m.std if whole else None
    )
    if exact is not None:
        return exact
    if m.min is not None and m.max is not None and is_sinusoidal(values, site.dtype, m.min, m.max):
        return SINUSOIDAL
    drawn = subsample(values)
    if _designed(site, values, drawn):
        return SchemeFit(
            scheme=f"fixed filter ({distinct.count(drawn)} distinct values)",
            key="fixed_filter",
            family=Family.FIXED,
            statistic=0.0,
            n=0,
            matched=True,
        )
    sample = break_ties(_replicas_once(site, drawn))
    n = sample.size
    crit = critical_value(n)
    cands = [*extra, *candidates(site, facts)]
    match = _best_match(site, sample, m.std, m.n_finite, crit, cands)
    if match is not None:
        d, c = match
        return SchemeFit(
            scheme=c.label,
            key=c.key,
            family=c.family,
            statistic=d,
            n=n,
            expected_std=c.std,
            ratio=m.std / c.std,
            matched=True,
            gain_for=c.gain_for,
            closest=c,
            fan_based=_closest(cands, m.std, c.family) if c.fixed else c,
        )
    fam_d, family = min(
        (ks_statistic(sample, family_cdf(f, m.std, sample, m.mean)), f) for f in RANDOM_FAMILIES
    )
    fits = fam_d <= crit + FAMILY_MARGIN
    closest = _closest(cands, m.std, family if fits else None)
    label = _family_label(family, m.std, m.mean) if fits else "unknown"
    exp = closest.std if closest else None
    return SchemeFit(
        scheme=label,
        key=str(family) if fits else None,
        family=family if fits else Family.UNKNOWN,
        statistic=fam_d,
        n=n,
        expected_std=exp,
        ratio=m.std / exp if exp else None,
        fits_family=fits,
        closest=closest,
        fan_based=closest,
    )


# A random draw of this many values in a fine float type has nearly as many distinct values;
# a designed filter (timm's binomial blur kernel [1, 2, 1]⊗[1, 2, 1]/16 repeated per channel,
# resnetblur/densenetblur's ``filt``) has a handful, whatever its size.
DESIGNED_MAX_VALUES = 16
DESIGNED_MIN_SIZE = 64
DESIGNED_MAX_SIZE = 1 << 22  # read whole to compare its channels: a filter bank is small
_FINE_STORAGE = frozenset({"double", "float", "float16", "bfloat16"})


# Storage where a random draw has next to no exact repeats (fp16 and below have grids of ties,
# which break_ties spreads instead).
_CONTINUOUS_STORAGE = frozenset({"double", "float"})


def _replicas_once(site: WeightSite, drawn: np.ndarray) -> np.ndarray:
    """Each value once when most non-zero values repeat exactly: the tensor replicates a
    smaller draw (an exporter folded ``rel_pos[dist]``, timm MViTv2's relative position
    table gathered per query/key pair: 2592 drawn values in 18816). A goodness-of-fit test
    counts the draw, not its copies; counted with them it rejects the very scheme that drew
    it. Zeros keep their count (sparse tensors are no replicas)."""
    if site.dtype not in _CONTINUOUS_STORAGE or site.quant is not None:
        return drawn
    nonzero = drawn[drawn != 0]
    once = np.unique(nonzero)
    if once.size >= 0.5 * nonzero.size:
        return drawn
    return np.concatenate([once, drawn[drawn == 0]])


def _designed(site: WeightSite, values: Values, drawn: np.ndarray) -> bool:
    """A fixed filter, not an init scheme's draw: few distinct values in a fine float type
    (quantized and float8 weights live on a coarse grid and are not read so), and every
    output channel the same kernel. A random {0, 1} matrix (``torch.randint``) has few values
    too, but rows that differ: it is judged."""
    if (
        site.quant is not None
        or site.dtype not in _FINE_STORAGE
        or drawn.size < DESIGNED_MIN_SIZE
        or distinct.count(drawn) > DESIGNED_MAX_VALUES
        or values.ndim < 2
        or values.size > DESIGNED_MAX_SIZE
    ):
        return False
    rows = values.array().reshape(values.shape[0], -1)
    return bool(np.all(rows == rows[0]))


def _best_match(
    site: WeightSite,
    sample: np.ndarray,
    std: float,
    n_total: int,
    crit: float,
    cands: list[Scheme],
) -> tuple[float, Scheme] | None:
    """The catalog scheme the sample was drawn from, if any: the exact std agrees within its
    sampling error, KS accepts the shape, and the likelihood ranks what is left."""
    act = _gain_family(site)
    tol = _ROUNDING.get(site.dtype, 0.02) if site.quant is None else 0.02
    accepted: list[tuple[float, int, int, float, Scheme]] = []
    for order, c in enumerate(cands):
        if std <= 0 or abs(math.log(std / c.std)) > math.log(SCALE_WINDOW):
            continue
        if not _scale_agrees(std, c, n_total):
            continue
        d = ks_statistic(sample, family_cdf(c.family, c.std, sample))
        if d <= crit + MATCH_MARGIN:
            mismatch = 0 if c.gain_for in (None, act) else 1
            accepted.append((_loglik(sample, c, tol), mismatch, order, d, c))
    if not accepted:
        return None
    # KS accepts; the likelihood ranks (it sees a uniform's hard bound, which KS barely does
    # at small n). Schemes within TIE_NATS of the best are indistinguishable (xavier with tanh
    # gain vs kaiming with leaky_relu(0.2) gain on some fans): prefer the one whose gain
    # targets this layer's activation, then the catalog's order (context first).
    top = max(t[0] for t in accepted)
    tied = [t for t in accepted if t[0] >= top - TIE_NATS]
    _, _, _, d, c = min(tied, key=lambda t: (t[1], t[2]))
    return d, c


# Excess kurtosis per family: the std's sampling error is std·sqrt((kurtosis + 2) / 4n).
_KURTOSIS = {"uniform": -1.2, "normal": 0.0, "trunc_normal": -0.6345}
SCALE_Z = 4.0
SCALE_SYSTEMATIC = 0.01  # storage rounding, quantization grids, padding rows


def _scale_agrees(std: float, c: Scheme, n: int) -> bool:
    """The exact std against the scheme's, within SCALE_Z standard errors: far more powerful
    for scale than KS, which at small n accepts a ±35% scale error."""
    rel_se = math.sqrt((_KURTOSIS.get(c.family, 0.0) + 2.0) / (4.0 * max(n, 1)))
    tol = SCALE_Z * math.hypot(rel_se, SCALE_SYSTEMATIC)
    return abs(std / c.std - 1.0) <= tol


def _closest(cands: list[Scheme], std: float, family: str | None) -> Scheme | None:
    """The nearest fan-based scheme of the values' own family (normal and truncated normal
    count as one: at small n they are hard to tell apart). Fixed-std schemes (HF's 0.02,
    Keras' 0.05) explain a tensor only by matching it exactly, so they bound nothing."""
    gauss = ("normal", "trunc_normal")

    def same(c: Scheme) -> bool:
        return family is None or c.family == family or (c.family in gauss and family in gauss)

    pool = [c for c in cands if not c.fixed and same(c)] or [c for c in cands if not c.fixed]
    if not pool or std <= 0:
        return None
    return min(pool, key=lambda c: abs(math.log(std / c.std)))


_RELU_LIKE = frozenset(
    {"relu", "prelu", "elu", "celu", "gelu", "silu", "mish", "softplus", "hardswish", "relu6"}
)


def _gain_family(site: WeightSite) -> str | None:
    """The calculate_gain name for this layer's activation (GELU & co. use ReLU's gain)."""
    act = site.activation
    if act is None:
        return None
    if act.kind in _RELU_LIKE:
        return "relu"
    if act.kind in (Kind.SOFTMAX, Kind.UNKNOWN):
        return "linear"
    return act.kind


def _matrix_view(site: WeightSite, values: Values) -> Values:
    """One matrix of a stack: a direction of an LSTM/GRU/RNN weight, an expert of a batch."""
    if values.ndim == 3 and site.op_type in ("LSTM", "GRU", "RNN"):
        return values.view(lambda a: a[0])
    if values.ndim >= 3 and site.op_type in ("MatMul", "Einsum"):
        return values.view(lambda a: a.reshape(-1, a.shape[-2], a.shape[-1])[0])
    return values


# Relative rounding of storage: how far a stored value may sit beyond a scheme's support.
_ROUNDING = {"double": 1e-12, "float": 1e-6, "float16": 2.0**-11, "bfloat16": 2.0**-8}


def _loglik(sample: np.ndarray, c: Scheme, tol: float) -> float:
    """Log-likelihood of the sample under the scheme. A bounded support (uniform, truncated
    normal) admits values beyond it only by the storage rounding ``tol``: the bound is what
    tells kaiming_uniform from a near-identical xavier_uniform."""
    edge = c.bound * (1.0 + tol)
    if c.family in (Family.UNIFORM, Family.TRUNC_NORMAL) and np.max(np.abs(sample)) > edge:
        return -math.inf
    if c.family == Family.UNIFORM:
        return -sample.size * math.log(2 * edge)
    if c.family == Family.TRUNC_NORMAL:
        sigma = c.std / TN_STD
        return float(
            np.sum(dists.truncnorm_logpdf(sample, -2.0 * (1 + tol), 2.0 * (1 + tol), sigma))
        )
    return float(np.sum(dists.norm_logpdf(sample, c.std)))


def _family_label(family: str, std: float, mean: float) -> str:
    shift = f", mean={mean:.3g}" if abs(mean) > 0.1 * std else ""
    if family == Family.UNIFORM:
        return f"uniform(bound={std * math.sqrt(3.0):.3g}{shift})"
    if family == Family.TRUNC_NORMAL:
        return f"trunc_normal(std={std / TN_STD:.3g}, at 2 std{shift})"
    return f"normal(std={std:.3g}{shift})"
