"""Stage 3: measure each site's values. Nothing here decides what is wrong; rules do.

Tensors are independent, so :func:`measure_all` measures them on ``jobs`` threads (numpy and
scipy release the GIL in the loops that cost; threads measured faster than processes, which
would have to re-open and re-map the model). Each site's result depends only on its own
values, and results are collected in site order, so the output is byte for byte the same
whatever ``jobs`` is. A small model is measured on this thread alone: its tensors cost
microseconds of numpy each, far less than starting the threads (and importing their pool).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from initaudit import timing
from initaudit.graph.model import MATRIX_ROLES, ModelFacts, Role, WeightSite
from initaudit.stats import distinct
from initaudit.stats.fit import fit_scheme
from initaudit.stats.histogram import Histogram, histogram
from initaudit.stats.model import NO_FIT, SchemeFit
from initaudit.stats.moments import TensorStats, compute_stats
from initaudit.stats.shared import near, recipes, shared_std
from initaudit.stats.units import EqualUnits, find_duplicate_units
from initaudit.stats.values import CHUNK, Values, site_reader
from initaudit.stats.vectors import VectorFit, fit_vector
from initaudit.store import TensorStore


@dataclass(frozen=True, kw_only=True)
class SiteStats:
    moments: TensorStats
    duplicates: EqualUnits | None
    fit: SchemeFit = NO_FIT
    vector: VectorFit | None = None
    tied_to: str | None = None  # the embedding this weight is a (transposed) copy of
    histogram: Histogram | None = None  # only when asked for (--html)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """How far :func:`measure_all` is: handed to its ``progress`` callback before the first
    tensor and after each one."""

    tensors_done: int
    tensors_total: int
    bytes_done: int
    bytes_total: int


def measure(
    site: WeightSite,
    store: TensorStore,
    facts: ModelFacts | None = None,
    tied_to: str | None = None,
    histograms: bool = False,
) -> SiteStats:
    """All statistics of one site; the tensor's values are dropped when this returns.

    ``histograms`` also bins the values for the HTML report (a subsample: about 1 ms).
    """
    values = site_reader(site, store)
    try:
        with timing.part("moments"):
            moments = compute_stats(values)
        dup = None
        if site.units is not None and moments.n_nonfinite == 0 and moments.min != moments.max:
            with timing.part("duplicates"):
                dup = find_duplicate_units(values, site.units, finite=True)
        fit = NO_FIT
        with timing.part("fit"):
            # A folded table summed into an input stream is compared with its sibling lookups
            # (IA204), so it gets a distribution too (sinusoidal ones are no draws).
            if (site.role in MATRIX_ROLES or site.stream is not None) and tied_to is None:
                fit = fit_scheme(site, values, moments, facts or ModelFacts())
            hist = histogram(values, moments, fit) if histograms else None
        with timing.part("vectors"):
            vector = fit_vector(site, values, moments)
        return SiteStats(
            moments=moments,
            duplicates=dup,
            fit=fit,
            vector=vector,
            tied_to=tied_to,
            histogram=hist,
        )
    finally:
        values.release(0, values.size)


def default_jobs() -> int:
    """All the cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# Stored bytes below which a model's tensors are measured serially whatever ``jobs`` is.
SERIAL_BYTES = 1 << 20


def measure_all(
    sites: Sequence[WeightSite],
    facts: ModelFacts,
    store: TensorStore,
    *,
    jobs: int = 1,
    progress: Callable[[Progress], None] | None = None,
    histograms: bool = False,
) -> dict[str, SiteStats]:
    """Every site's statistics, in site order, measured on ``jobs`` threads."""
    with timing.part("tied"):
        tied = _tied_copies(sites, store)
    sizes = [_stored_bytes(s, store) for s in sites]
    done = [0, 0]
    lock = threading.Lock()  # the callback runs on whichever thread finished a tensor
    stop = threading.Event()  # set when the run is interrupted: queued tensors are not started

    def one(i: int) -> SiteStats:
        if stop.is_set():
            raise _Stopped
        result = measure(sites[i], store, facts, tied.get(sites[i].name), histograms)
        if progress is not None:
            with lock:
                done[0] += 1
                done[1] += sizes[i]
                progress(
                    Progress(
                        tensors_done=done[0],
                        tensors_total=len(sites),
                        bytes_done=done[1],
                        bytes_total=sum(sizes),
                    )
                )
        return result

    if progress is not None:
        progress(
            Progress(tensors_done=0, tensors_total=len(sites), bytes_done=0, bytes_total=sum(sizes))
        )
    if jobs <= 1 or len(sites) <= 1 or sum(sizes) < SERIAL_BYTES:
        results = [one(i) for i in range(len(sites))]
    else:
        from concurrent.futures import ThreadPoolExecutor

        # Largest first, so no big tensor is left to run alone at the end; collected by index.
        order = sorted(range(len(sites)), key=lambda i: -sizes[i])
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="initaudit") as pool:
            futures = {i: pool.submit(one, i) for i in order}
            try:
                results = [futures[i].result() for i in range(len(sites))]
            except BaseException:
                # Ctrl-C arrives in this (the main) thread: no queued tensor starts, and the
                # pool's exit waits only for the tensors being measured right now.
                stop.set()
                for f in futures.values():
                    f.cancel()
                raise
    with timing.part("fit"):
        results = _refit_shared(sites, results, facts, store, histograms)
    return {s.name: r for s, r in zip(sites, results, strict=True)}


def _refit_shared(
    sites: Sequence[WeightSite],
    results: list[SiteStats],
    facts: ModelFacts,
    store: TensorStore,
    histograms: bool,
) -> list[SiteStats]:
    """Weights no catalog scheme explained but that share the model's one fixed std
    (stats/shared.py) are fitted again with that std as a scheme; only their sample is read
    again (the exact pass is not repeated)."""
    sigma = shared_std(sites, [r.moments for r in results], [r.fit for r in results])
    if sigma is None:
        return results
    extra = recipes(sigma)
    out = list(results)
    for i, (site, r) in enumerate(zip(sites, results, strict=True)):
        if r.fit.matched or r.tied_to is not None or not near(r.moments.std, sigma):
            continue
        values = site_reader(site, store)
        try:
            fit = fit_scheme(site, values, r.moments, facts, extra)
            hist = histogram(values, r.moments, fit) if histograms else None
        finally:
            values.release(0, values.size)
        out[i] = replace(r, fit=fit, histogram=hist)
    return out


class _Stopped(Exception):
    """A queued tensor's measurement, skipped because the run was interrupted."""


def _stored_bytes(site: WeightSite, store: TensorStore) -> int:
    t = store.get(site.name)
    return t.nbytes if t is not None else 0


def _tied_copies(sites: Sequence[WeightSite], store: TensorStore) -> dict[str, str]:
    """Weights that are the transposed copy of an embedding table (a tied lm_head).

    Exporters keep the (V, D) table for Gather and a (D, V) copy for the head MatMul; the copy's
    init is the embedding's, so judging it as a fan-based Linear would be a false alarm.
    """
    tables = {
        (s.shape[1], s.shape[0]): s
        for s in sites
        if s.role == Role.EMBEDDING and len(s.shape) == 2 and s.quant is None
    }
    found: dict[str, str] = {}
    for s in sites:
        table = tables.get(s.shape) if s.role == Role.WEIGHT and len(s.shape) == 2 else None
        if table is None or s.quant is not None:
            continue
        copy, original = site_reader(s, store), site_reader(table, store)
        try:
            if _transposed_equal(copy, original):
                found[s.name] = table.name
        finally:
            copy.release(0, copy.size)
            original.release(0, original.size)
    return found


@lru_cache(maxsize=16)
def _probe_positions(size: int) -> np.ndarray:
    """Up to 1024 sorted flat positions, shared by tensors of one size."""
    rng = np.random.default_rng(0x71ED)
    flat = distinct.unique(rng.integers(0, size, size=min(size, 1024)))
    flat.flags.writeable = False
    return flat


def _transposed_equal(a: Values, b: Values) -> bool:
    """``array_equal(a, b.T)`` for 2-D values, reading a sample first and then slabs.

    A weight that is not a copy differs at the first sampled element, so telling it apart
    costs a few page reads; only a real copy is compared in full (a slab of ``b``'s stored
    rows against the matching columns of ``a``, a few MB at a time).
    """
    rows, cols = a.shape
    if a.size == 0:
        return True
    flat = _probe_positions(a.size)
    i, j = np.divmod(flat, cols)
    if not np.array_equal(a.take(flat), b.take(j * rows + i)):
        return False
    step = max(1, CHUNK // max(rows, 1))
    return all(
        np.array_equal(a[:, lo : lo + step], b[lo : lo + step].T) for lo in range(0, cols, step)
    )
