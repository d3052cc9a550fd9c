"""Stage 3: measure each site's values. Nothing here decides what is wrong; rules do."""

from __future__ import annotations

from dataclasses import dataclass

from initaudit.graph.sites import WeightSite
from initaudit.load import TensorStore
from initaudit.stats.moments import TensorStats, compute_stats
from initaudit.stats.units import DuplicateUnits, find_duplicate_units
from initaudit.stats.values import site_values


@dataclass(frozen=True)
class SiteStats:
    moments: TensorStats
    duplicates: DuplicateUnits | None


def measure(site: WeightSite, store: TensorStore) -> SiteStats:
    """All statistics of one site; the tensor's values are dropped when this returns."""
    values = site_values(site, store)
    moments = compute_stats(values)
    dup = None
    if site.units is not None and moments.n_nonfinite == 0 and moments.min != moments.max:
        dup = find_duplicate_units(values, site.units)
    return SiteStats(moments, dup)


__all__ = ["DuplicateUnits", "SiteStats", "TensorStats", "measure"]
