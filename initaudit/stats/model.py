"""The scheme records the statistics stage makes: a catalog :class:`Scheme` and the
:class:`SchemeFit` that says which one a tensor's values were drawn from."""

from __future__ import annotations

import math
from dataclasses import dataclass

from initaudit._compat import StrEnum

# std of a standard normal truncated at ±2: Keras/JAX/Flax/timm divide by it (init-reference §6).
TN_STD = 0.87962566103423978


class Family(StrEnum):
    """The shape of a distribution an init draws from, or the exact structure it has."""

    UNIFORM = "uniform"
    NORMAL = "normal"
    TRUNC_NORMAL = "trunc_normal"  # a normal cut at ±2 of its underlying sigma
    ORTHOGONAL = "orthogonal"
    CONSTANT = "constant"
    IDENTITY = "identity"
    DIRAC = "dirac"
    SINUSOIDAL = "sinusoidal"
    FIXED = "fixed"  # a designed filter of a few values (a blur kernel), not a random draw
    UNKNOWN = "unknown"  # fits none of the random families


RANDOM_FAMILIES = (Family.UNIFORM, Family.NORMAL, Family.TRUNC_NORMAL)


@dataclass(frozen=True, kw_only=True)
class Scheme:
    """One concrete distribution a framework draws from, for this tensor's fans."""

    key: str  # stable family of schemes: pytorch_default, kaiming_normal, xavier_uniform, ...
    label: str  # readable, with parameters: "kaiming_normal(fan_in, relu)"
    family: Family  # uniform | normal | trunc_normal
    std: float
    gain_for: str | None = None  # the nonlinearity the gain targets (for IA301)
    fix: str = ""  # how to get it in PyTorch, for messages
    fixed: bool = False  # a chosen number, not derived from the fans
    context: bool = False  # drawn so because of where the layer sits (T5 query, GPT-2 residual)

    @property
    def bound(self) -> float:
        """Support half-width: exact for uniform, the truncation point for trunc_normal."""
        if self.family == Family.UNIFORM:
            return self.std * math.sqrt(3.0)
        if self.family == Family.TRUNC_NORMAL:
            return 2.0 * self.std / TN_STD
        return math.inf


@dataclass(frozen=True, kw_only=True)
class SchemeFit:
    """What the values were drawn from, as scipy.stats results: a statistic and a p-value."""

    scheme: str | None = None  # readable name with parameters, None when too small to tell
    key: str | None = None  # catalog key: pytorch_default, kaiming_normal, orthogonal, zeros...
    family: Family | None = None
    statistic: float | None = None  # KS D of the identified scheme (or of the best family)
    n: int | None = None  # size of the KS sample; 0 for exact structure (constant, identity...)
    expected_std: float | None = None  # of the matched scheme, else of the closest one
    ratio: float | None = None  # observed std / expected_std
    matched: bool = False  # shape and scale fit a catalog scheme
    fits_family: bool = True  # looks like an init distribution at all
    gain_for: str | None = None  # the nonlinearity the matched scheme's gain targets
    closest: Scheme | None = None
    # The nearest fan-based scheme of the values' family, also when a fixed-std scheme (a
    # number a user picks) matched: where nothing resets the scale, that is the comparison.
    fan_based: Scheme | None = None

    @property
    def pvalue(self) -> float | None:
        """P(D >= statistic) under the scheme (``scipy.stats.kstwo``); 1.0 for exact structure.

        Computed on demand: no decision uses it, and it needs scipy.stats (~1 s to import).
        """
        if self.statistic is None or self.n is None:
            return None
        if self.n == 0:
            return 1.0
        from scipy import stats  # only here: see the docstring

        return float(stats.kstwo.sf(self.statistic, self.n))


NO_FIT = SchemeFit()
# A fixed sin/cos position table (stats/sinusoid.py): computed, so no scheme judges it.
SINUSOIDAL = SchemeFit(
    scheme="sinusoidal position table",
    key="sinusoidal",
    family=Family.SINUSOIDAL,
    statistic=0.0,
    n=0,
    matched=True,
)
