"""Which catalog entries the sweep tries: small variants, every module or model type covered."""

from __future__ import annotations

from collections import defaultdict

from zoo.records import ModelSpec


def select_timm(catalog: list[ModelSpec], max_params: int, per_module: int) -> list[ModelSpec]:
    """Per timm module, the smallest model of each family (``ModelSpec.extra['family']``),
    then the next smallest ones until the module has ``per_module`` models (when it has
    that many under the cap). A module whose models are all over the cap keeps its
    smallest, so that every module is tried and its skip has a reason."""
    by_module: dict[str, list[ModelSpec]] = defaultdict(list)
    for spec in catalog:
        by_module[spec.group].append(spec)
    chosen: list[ModelSpec] = []
    for module in sorted(by_module):
        ranked = sorted(by_module[module], key=lambda s: (s.parameters or 0, s.name))
        small = [s for s in ranked if (s.parameters or 0) <= max_params] or ranked[:1]
        picked: list[ModelSpec] = []
        families: set[str] = set()
        for spec in small:
            if spec.extra.get("family") not in families:
                families.add(spec.extra.get("family"))
                picked.append(spec)
        for spec in small:
            if len(picked) >= per_module:
                break
            if spec not in picked:
                picked.append(spec)
        chosen.extend(picked)
    return chosen


def interleave(*queues: list[ModelSpec]) -> list[ModelSpec]:
    """Round-robin over the sources, each in its own order: every source moves forward, and
    a run stopped early has tried the first (cheapest) models of each."""
    out: list[ModelSpec] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def spread(specs: list[ModelSpec], limit: int) -> list[ModelSpec]:
    """``limit`` entries evenly spaced over ``specs`` (all of them when limit is 0), so a
    partial sweep samples the whole alphabet rather than its first letters."""
    if not limit or limit >= len(specs):
        return specs
    return (
        [specs[round(i * (len(specs) - 1) / (limit - 1))] for i in range(limit)]
        if limit > 1
        else specs[:1]
    )
