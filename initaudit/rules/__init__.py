"""Every rule, listed explicitly and sorted by code (no registry magic)."""

from __future__ import annotations

from collections.abc import Sequence

from initaudit.rules._base import Rule, RuleContext
from initaudit.rules.ia101_zero_weight import ZeroWeight
from initaudit.rules.ia102_constant_weight import ConstantWeight
from initaudit.rules.ia103_non_finite import NonFiniteValues
from initaudit.rules.ia104_duplicate_units import DuplicateUnits
from initaudit.rules.ia105_garbage_values import GarbageValues

ALL_RULES: tuple[type[Rule], ...] = (
    ZeroWeight,
    ConstantWeight,
    NonFiniteValues,
    DuplicateUnits,
    GarbageValues,
)

# Codes reserved by the contract for rules that later releases implement.
RESERVED_CODES: dict[str, str] = {
    "IA201": "mis-scaled: std far from every plausible scheme for its fans/activation",
    "IA202": "offset: mean far from zero",
    "IA203": "signal explodes or vanishes through the network's depth (model-level)",
    "IA204": "inconsistent with sibling layers",
    "IA301": "scheme does not suit the activation",
    "IA302": "values fit no known init distribution",
    "IA401": "bias not zero / norm scale not one / norm shift not zero",
}


def rule_by_code(code: str) -> type[Rule] | None:
    return next((r for r in ALL_RULES if r.code == code.upper()), None)


def run_rules(ctx: RuleContext, rules: Sequence[type[Rule]] = ALL_RULES) -> list:
    return [f for r in rules for f in r().check(ctx)]


__all__ = ["ALL_RULES", "RESERVED_CODES", "Rule", "RuleContext", "rule_by_code", "run_rules"]
