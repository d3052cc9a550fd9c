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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from initaudit.graph.model import ModelFacts, WeightSite
from initaudit.stats import dists
from initaudit.stats.kolmogorov import critical_value
from initaudit.stats.moments import TensorStats, compute_stats
from initaudit.stats.sample import break_ties, subsample
from initaudit.stats.schemes import TN_STD, Scheme, candidates
from initaudit.stats.sinusoid import is_sinusoidal
from initaudit.stats.values import Values, as_values

MIN_N = 32  # fewer values than this: no guess
MATCH_MARGIN = 0.01
FAMILY_MARGIN = 0.03
SCALE_WINDOW = 1.6
TIE_NATS = 2.0


@dataclass(frozen=True)
class SchemeFit:
    """What the values were drawn from, as scipy.stats results: a statistic and a p-value."""

    scheme: str | None  # readable name with parameters, None when too small to tell
    key: str | None  # catalog key: pytorch_default, kaiming_normal, orthogonal, zeros, ...
    family: str | None  # uniform | normal | trunc_normal | orthogonal | constant | ...
    statistic: float | None  # KS D of the identified scheme (or of the best family)
    n: int | None  # size of the KS sample; 0 for exact structure (constant, identity...)
    expected_std: float | None  # of the matched scheme, else of the closest one
    ratio: float | None  # observed std / expected_std
    matched: bool = False  # shape and scale fit a catalog scheme
    fits_family: bool = True  # looks like an init distribution at all
    gain_for: str | None = None  # the nonlinearity the matched scheme's gain targets
    closest: Scheme | None = None

    @property
    def pvalue(self) -> float | None:
        """P(D >= statistic) under the scheme (``scipy.stats.kstwo``); 1.0 for exact structure.

        Computed on demand: no decision uses it, and it needs scipy.stats (~1 s to import).
        """
        if self.statistic is None or self.n is None:
            return None
        return 1.0 if self.n == 0 else float(_stats().kstwo.sf(self.statistic, self.n))


NO_FIT = SchemeFit(None, None, None, None, None, None, None)
# A fixed sin/cos position table (stats/sinusoid.py): computed, so no scheme judges it.
SINUSOIDAL = SchemeFit(
    "sinusoidal position table", "sinusoidal", "sinusoidal", 0.0, 0, None, None, True
)


def _stats():
    """scipy.stats, imported on first use only (see stats/dists.py)."""
    from scipy import stats

    return stats


def _ks(sorted_sample: np.ndarray, cdf: np.ndarray) -> float:
    """scipy.stats.kstest's D: the largest gap between the empirical CDF's steps and ``cdf``."""
    above, below = _ecdf_steps(sorted_sample.size)
    return float(max(np.max(above - cdf), np.max(cdf - below)))


@lru_cache(maxsize=64)
def _ecdf_steps(n: int) -> tuple[np.ndarray, np.ndarray]:
    """i/n and (i-1)/n for i = 1..n: the empirical CDF just after and before each value."""
    i = np.arange(1, n + 1)
    above, below = i / n, (i - 1) / n
    above.flags.writeable = below.flags.writeable = False
    return above, below


def _cdf(family: str, std: float, x: np.ndarray, loc: float = 0.0) -> np.ndarray:
    """The family's CDF at ``x`` (stats/dists.py: scipy.stats' formulas, without its import)."""
    if family == "uniform":
        b = std * math.sqrt(3.0)
        return dists.uniform_cdf(x, loc - b, 2 * b)
    if family == "trunc_normal":
        return dists.truncnorm_cdf(x, loc, std / TN_STD)
    return dists.norm_cdf(x, loc, std)


def fit_scheme(
    site: WeightSite, values: Values | np.ndarray, m: TensorStats, facts: ModelFacts
) -> SchemeFit:
    if m.size == 0 or m.n_nonfinite or m.std is None or m.mean is None:
        return NO_FIT
    if m.min == m.max:
        return _constant_fit(m.min or 0.0)
    if m.size < MIN_N:
        return NO_FIT
    values = as_values(values)
    mat = _matrix_view(site, values)
    # Without NaN (checked above), the whole tensor's non-zeros and std are known already.
    whole = mat is values
    exact = _identity_fit(mat, m.size - m.n_zero if whole else None) or _orthogonal_fit(
        mat, _ORTHO_TOL.get(site.dtype), m.std if whole else None
    )
    if exact is not None:
        return exact
    if is_sinusoidal(values, site.dtype, m.min, m.max):
        return SINUSOIDAL
    sample = break_ties(subsample(values))
    n = sample.size
    crit = critical_value(n)
    cands = candidates(site, facts)
    match = _best_match(site, sample, m.std, m.n_finite, crit, cands)
    if match is not None:
        d, c = match
        return SchemeFit(
            c.label,
            c.key,
            c.family,
            d,
            n,
            c.std,
            m.std / c.std,
            True,
            True,
            c.gain_for,
            c,
        )
    fam_d, family = min(
        (_ks(sample, _cdf(f, m.std, sample, m.mean)), f)
        for f in ("uniform", "normal", "trunc_normal")
    )
    fits = fam_d <= crit + FAMILY_MARGIN
    closest = _closest(cands, m.std, family if fits else None)
    label = _family_label(family, m.std, m.mean) if fits else "unknown"
    exp = closest.std if closest else None
    return SchemeFit(
        label,
        family if fits else None,
        family if fits else "unknown",
        fam_d,
        n,
        exp,
        m.std / exp if exp else None,
        False,
        fits,
        None,
        closest,
    )


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
        d = _ks(sample, _cdf(c.family, c.std, sample))
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
    if act.kind in ("softmax", "unknown"):
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
    if c.family in ("uniform", "trunc_normal") and np.max(np.abs(sample)) > edge:
        return -math.inf
    if c.family == "uniform":
        return -sample.size * math.log(2 * edge)
    if c.family == "trunc_normal":
        sigma = c.std / TN_STD
        return float(
            np.sum(dists.truncnorm_logpdf(sample, -2.0 * (1 + tol), 2.0 * (1 + tol), sigma))
        )
    return float(np.sum(dists.norm_logpdf(sample, c.std)))


def _family_label(family: str, std: float, mean: float) -> str:
    shift = f", mean={mean:.3g}" if abs(mean) > 0.1 * std else ""
    if family == "uniform":
        return f"uniform(bound={std * math.sqrt(3.0):.3g}{shift})"
    if family == "trunc_normal":
        return f"trunc_normal(std={std / TN_STD:.3g}, at 2 std{shift})"
    return f"normal(std={std:.3g}{shift})"


def _constant_fit(value: float) -> SchemeFit:
    if value == 0.0:
        return SchemeFit("zeros", "zeros", "constant", 0.0, 0, None, None, True)
    if value == 1.0:
        return SchemeFit("ones", "ones", "constant", 0.0, 0, None, None, True)
    return SchemeFit(f"constant({value:.6g})", "constant", "constant", 0.0, 0, None, None, True)


def _identity_fit(values: Values, nonzero: int | None) -> SchemeFit | None:
    """eye_ (2-D) or dirac_ (conv): one value g at (i, i[, centre]) and zeros elsewhere.

    ``nonzero`` is the count when already known; otherwise the values are counted a chunk at a
    time, stopping as soon as there are too many (any dense matrix stops in its first chunk).
    """
    if values.ndim < 2 or min(values.shape[:2]) < 2:
        return None
    k = min(values.shape[0], values.shape[1])
    if nonzero is None:
        nonzero = 0
        for _, chunk in values.chunks():
            nonzero += int(np.count_nonzero(chunk))
            if nonzero > k:
                return None
    if nonzero != k:
        return None
    nz = np.concatenate(
        [np.flatnonzero(chunk) + start for start, chunk in values.chunks()] or [np.zeros(0, int)]
    )
    if nz.size != k:
        return None
    picked = values.take(nz)
    g = float(picked[0])
    idx = np.unravel_index(nz, values.shape)
    centre = tuple(d // 2 for d in values.shape[2:])
    ok = (
        np.all(idx[0] == idx[1])
        and all(np.all(ax == c) for ax, c in zip(idx[2:], centre, strict=True))
        and np.all(picked == g)
    )
    if not ok:
        return None
    name = "identity" if values.ndim == 2 else "dirac"
    return SchemeFit(f"{name}(gain={g:.4g})", name, name, 0.0, 0, None, None, True)


# Relative tolerance of W·Wᵀ = g²·I per storage type (rounding of the entries); other storage
# (float8, quantized grids) is too coarse for an exact test.
_ORTHO_TOL = {"double": 1e-6, "float": 1e-4, "float16": 2e-3, "bfloat16": 1e-2}


@lru_cache(maxsize=64)
def _row_sample(r: int) -> np.ndarray:
    """32 of ``r`` rows (sorted), a function of ``r`` only: a generator per tensor would cost
    ~0.3 ms holding the GIL."""
    pick = np.sort(np.random.default_rng(0x0A7).choice(r, size=min(r, 32), replace=False))
    pick.flags.writeable = False
    return pick


def _equal_norms(rows: np.ndarray, tol: float) -> bool:
    norms = np.einsum("ij,ij->i", rows, rows)
    mean_norm = float(np.mean(norms))
    return mean_norm > 0 and float(np.max(np.abs(norms - mean_norm))) <= 2 * tol * mean_norm


def _orthogonal_fit(values: Values, tol: float | None, std: float | None) -> SchemeFit | None:
    """Rows (or columns, whichever are fewer) orthonormal up to a gain: torch and Keras alike.

    Sampled rows make the test cost O(k²·c) instead of O(r²·c), and only they are read. It is
    only trusted where a random matrix of the same std could not pass it: its Gram deviates by
    about 3/sqrt(c). ``std`` is the matrix's std when known (the ratio's numerator).
    """
    if values.ndim < 2 or tol is None:
        return None
    mat = values.view(lambda a: a.reshape(a.shape[0], -1))
    transposed = mat.shape[0] > mat.shape[1]
    r, c = mat.shape[::-1] if transposed else mat.shape
    if r < 2 or c < 4 or 3.0 / math.sqrt(c) < 2 * tol:
        return None
    pick = _row_sample(r)

    def rows_at(idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(mat[:, idx].T if transposed else mat[idx], dtype=np.float64)

    # Orthogonal rows have equal norms: a spread of norms well beyond ``tol`` already puts a
    # diagonal entry of the Gram matrix beyond it, so the full product is skipped (2x margin
    # for rounding). Random init: the spread is about sqrt(2/c), far beyond any tol, and two
    # rows already show it; they are read first (a column of a tall matrix is a strided read
    # across all of it), the other 30 only when the two agree.
    if not _equal_norms(rows_at(pick[:2]), tol):
        return None
    rows = rows_at(pick)
    if not _equal_norms(rows, tol):
        return None
    # einsum, not BLAS: see units._project (threaded BLAS on busy cores is 100x slower here).
    gram = np.einsum("ik,jk->ij", rows, rows)
    g2 = float(np.mean(np.diag(gram)))
    if g2 <= 0:
        return None
    dev = float(np.max(np.abs(gram - g2 * np.eye(len(rows))))) / g2
    if dev > tol:
        return None
    gain = math.sqrt(g2)
    expected = gain / math.sqrt(c)
    observed = std if std is not None else compute_stats(values).std
    return SchemeFit(
        f"orthogonal(gain={gain:.3g})",
        "orthogonal",
        "orthogonal",
        dev,
        0,
        expected,
        (observed or 0.0) / expected,
        True,
        True,
        None,
    )
