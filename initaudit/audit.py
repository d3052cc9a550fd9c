"""The pipeline: load -> graph -> stats -> rules -> report records, one file at a time.

Each tensor's values are read, measured and dropped before the next one is read, so memory
stays at one tensor (plus its float copy) however large the model is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from initaudit import __version__
from initaudit.config import DEFAULT, Config
from initaudit.errors import InputError
from initaudit.graph.sites import WeightSite, find_sites
from initaudit.load import LoadedModel, load_model
from initaudit.report.model import FileError, FileResult, Report, Severity, TensorReport
from initaudit.rules import ALL_RULES, Rule, RuleContext, run_rules
from initaudit.stats import SiteStats, measure


def audit_file(
    path: str | os.PathLike[str],
    rules: Sequence[type[Rule]] = ALL_RULES,
    debug: bool = False,
    config: Config = DEFAULT,
) -> FileResult:
    """Audit one model file; any problem becomes the result's ``error``, never an exception.

    An unexpected exception is a bug in initaudit, but it still must not hide the other files'
    results or print a traceback in CI: it becomes an ``internal`` error entry (``--debug``
    re-raises it).
    """
    shown = os.fspath(path)
    try:
        loaded = load_model(path)
    except InputError as exc:
        return FileResult(shown, FileError(exc.code, exc.message))
    try:
        return _audit_loaded(shown, loaded, rules, config)
    except InputError as exc:
        return FileResult(shown, FileError(exc.code, exc.message))
    except (
        MemoryError,
        RecursionError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        ArithmeticError,
        OSError,
    ) as exc:
        if debug:
            raise
        first = (str(exc).splitlines() or [""])[0][:200]
        return FileResult(
            shown,
            FileError(
                "internal", f"internal error ({type(exc).__name__}: {first}); rerun with --debug"
            ),
        )
    finally:
        loaded.close()


def _audit_loaded(
    shown: str, loaded: LoadedModel, rules: Sequence[type[Rule]], config: Config
) -> FileResult:
    sites = find_sites(loaded)
    stats: dict[str, SiteStats] = {site.name: measure(site, loaded.store) for site in sites}
    findings = run_rules(RuleContext(sites, stats, config), rules)
    tensors = tuple(_tensor_report(site, stats[site.name]) for site in sites)
    return FileResult(shown, None, tensors, tuple(sorted(findings, key=lambda f: f.sort_key())))


def _tensor_report(site: WeightSite, st: SiteStats) -> TensorReport:
    m = st.moments
    act = site.activation
    return TensorReport(
        name=site.name,
        node=site.node or None,
        op_type=site.op_type or None,
        role=site.role,
        shape=site.shape,
        dtype=site.dtype,
        fan_in=site.fan_in,
        fan_out=site.fan_out,
        activation=act.label if act else None,
        normalized=bool(act and act.normalized),
        scheme=None,
        mean=m.mean,
        std=m.std,
        expected_std=None,
        ratio=None,
        min=m.min,
        max=m.max,
        uses=tuple(u.node for u in site.uses),
        quantized=site.quant is not None,
    )


def audit_paths(
    paths: Sequence[str | os.PathLike[str]],
    fail_on: Severity | None = Severity.ERROR,
    rules: Sequence[type[Rule]] = ALL_RULES,
    debug: bool = False,
    config: Config = DEFAULT,
) -> Report:
    results = tuple(audit_file(p, rules, debug, config) for p in paths)
    return Report(results, __version__, fail_on)
