"""Every rule, listed explicitly and sorted by code (no registry magic)."""

from __future__ import annotations

from collections.abc import Sequence

from initaudit.findings import Finding
from initaudit.rules._base import Rule, RuleContext
from initaudit.rules.ia101_zero_weight import ZeroWeight
from initaudit.rules.ia102_constant_weight import ConstantWeight
from initaudit.rules.ia103_non_finite import NonFiniteValues
from initaudit.rules.ia104_duplicate_units import DuplicateUnits
from initaudit.rules.ia105_garbage_values import GarbageValues
from initaudit.rules.ia201_mis_scaled import MisScaled
from initaudit.rules.ia202_offset import Offset
from initaudit.rules.ia203_depth_signal import DepthSignal
from initaudit.rules.ia204_sibling_outlier import SiblingOutlier
from initaudit.rules.ia301_activation_mismatch import ActivationMismatch
from initaudit.rules.ia302_unfit_distribution import UnfitDistribution
from initaudit.rules.ia401_affine_not_default import AffineNotDefault

ALL_RULES: tuple[type[Rule], ...] = (
    ZeroWeight,
    ConstantWeight,
    NonFiniteValues,
    DuplicateUnits,
    GarbageValues,
    MisScaled,
    Offset,
    DepthSignal,
    SiblingOutlier,
    ActivationMismatch,
    UnfitDistribution,
    AffineNotDefault,
)

# Every rule code: what selection and configuration are validated against.
CODES: frozenset[str] = frozenset(r.code for r in ALL_RULES)


def rule_by_code(code: str) -> type[Rule] | None:
    return next((r for r in ALL_RULES if r.code == code.upper()), None)


def run_rules(ctx: RuleContext, rules: Sequence[type[Rule]] = ALL_RULES) -> list[Finding]:
    return [f for r in rules for f in r().check(ctx)]


__all__ = ["ALL_RULES", "CODES", "Rule", "RuleContext", "rule_by_code", "run_rules"]
