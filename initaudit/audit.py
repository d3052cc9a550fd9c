"""The pipeline: load -> graph -> stats -> rules -> report records, one file at a time.

Each tensor's values are read, measured and dropped before the next one is read, so memory
stays at one tensor (plus its float copy) however large the model is.
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from initaudit import timing
from initaudit._version import __version__
from initaudit.config import DEFAULT, Config
from initaudit.errors import InputError
from initaudit.fixes import frameworks_of
from initaudit.graph.build import build_graph
from initaudit.graph.model import ModelGraph, Role, WeightSite
from initaudit.load import LoadedModel, load_model
from initaudit.precedence import root_causes
from initaudit.report.model import DepthEntry, ErrorEntry, FileResult, Report, TensorReport
from initaudit.rules import ALL_RULES, Rule, RuleContext, run_rules
from initaudit.runtime import PropagationError, measure_outputs
from initaudit.signal.model import DepthProfile
from initaudit.signal.propagate import propagate
from initaudit.stats.measure import Progress, SiteStats, default_jobs, measure_all


@dataclass(frozen=True, kw_only=True)
class AuditOptions:
    """How to audit: one record travels from the caller (the CLI, the Python API) to each file.

    ``config`` holds selection, thresholds, overrides and ``fail_on``. ``jobs`` threads measure
    the tensors (None: every core this process may use; the report is the same for any
    number). ``propagate`` (input shapes by name, possibly empty) also runs the model on
    random inputs to measure each layer's output scale beside the prediction
    (``--propagate``); None does not run it. ``histograms`` bins every tensor's values for
    ``--html``. ``progress`` is called with the path and a :class:`Progress` after each
    tensor (the progress bar). ``debug`` re-raises an internal error instead of reporting it.
    """

    config: Config = DEFAULT
    rules: tuple[type[Rule], ...] = ALL_RULES
    jobs: int | None = None
    propagate: Mapping[str, tuple[int, ...]] | None = None
    histograms: bool = False
    progress: Callable[[str, Progress], None] | None = None
    debug: bool = False


DEFAULT_OPTIONS = AuditOptions()


def audit_file(path: str | os.PathLike[str], options: AuditOptions = DEFAULT_OPTIONS) -> FileResult:
    """Audit one model file; any problem becomes the result's ``error``, never an exception.

    An unexpected exception is a bug in initaudit, but it still must not hide the other files'
    results or print a traceback in CI: it becomes an ``internal`` error entry (``--debug``
    re-raises it). This is the one place that catches ``Exception``: whatever a stage or a rule
    raises (AttributeError, RuntimeError, numpy's errors...), the file fails closed here.
    """
    shown = os.fspath(path)
    try:
        with timing.stage("load"):
            loaded = load_model(path)
        try:
            return _audit_loaded(shown, loaded, options)
        except BaseException as exc:
            # Ctrl-C (or any error) in the middle of a tensor: the frames it unwinds through
            # still hold views of the memory maps, and a map with live views cannot be closed.
            # Clear them, so close() releases every map before the exception goes on.
            traceback.clear_frames(exc.__traceback__)
            raise
        finally:
            loaded.close()
    except InputError as exc:
        return FileResult(shown, ErrorEntry(exc.code, exc.message))
    except Exception as exc:
        if options.debug:
            raise
        return FileResult(shown, ErrorEntry("internal", _internal_message(exc)))


def audit_paths(
    paths: Sequence[str | os.PathLike[str]], options: AuditOptions = DEFAULT_OPTIONS
) -> Report:
    """Audit each model in turn; the report fails on ``options.config.fail_on``."""
    results = tuple(audit_file(p, options) for p in paths)
    return Report(results, __version__, fail_on=options.config.fail_level)


def _internal_message(exc: Exception) -> str:
    first = (str(exc).splitlines() or [""])[0][:200]
    return f"internal error ({type(exc).__name__}: {first}); rerun with --debug"


def _audit_loaded(shown: str, loaded: LoadedModel, options: AuditOptions) -> FileResult:
    report_progress = options.progress
    with timing.stage("graph"):
        graph = build_graph(loaded)
    sites = graph.sites
    with timing.stage("measure"):
        stats = measure_all(
            sites,
            graph.facts,
            loaded.store,
            jobs=options.jobs or default_jobs(),
            progress=None if report_progress is None else (lambda p: report_progress(shown, p)),
            histograms=options.histograms,
        )
    with timing.stage("depth"):
        depth = propagate(graph, _second_moments(stats))
    with timing.stage("rules"):
        result = _judged(shown, loaded, sites, stats, depth, options)
    if options.propagate is None:
        return result
    return _with_measurement(result, loaded, graph, options.propagate)


def _judged(
    shown: str,
    loaded: LoadedModel,
    sites: tuple[WeightSite, ...],
    stats: dict[str, SiteStats],
    depth: DepthProfile,
    options: AuditOptions,
) -> FileResult:
    """The rules' findings (selected, overridden, one per root cause) and the file's records."""
    config = options.config
    selected = [r for r in options.rules if config.selects(r.code)]
    findings = run_rules(
        RuleContext(
            sites=sites,
            stats=stats,
            config=config,
            depth=depth,
            frameworks=frameworks_of(loaded.model.producer_name),
        ),
        selected,
    )
    # Per-tensor overrides (ignore, allow-zeros) apply to what rules found, so no rule needs
    # to know about them; a node glob matches any node that reads the tensor.
    nodes = {s.name: (s.node, *(u.node for u in s.uses)) for s in sites}
    kept = [f for f in findings if config.keeps(f.rule, f.tensor, nodes.get(f.tensor or "", ()))]
    # One root cause, one finding: consequences of a reported finding are dropped, after
    # selection and overrides, so an ignored cause brings its consequences back.
    kept = root_causes(kept)
    tensors = tuple(_tensor_report(site, stats[site.name]) for site in sites)
    layers = tuple(
        DepthEntry(
            tensor=d.tensor,
            node=d.node,
            op_type=d.op_type,
            log10_forward=d.log10_forward,
            log10_backward=d.log10_backward,
            log10_output=d.log10_output,
            judged=d.judged,
            judged_backward=d.judged_backward,
            assumed=d.assumed,
            assumed_backward=d.assumed_backward,
            batch_norm=d.batch_norm,
        )
        for d in depth.layers
    )
    data_files = {str(t.external_path) for t in loaded.store.tensors.values() if t.external_path}
    return FileResult(
        shown,
        tensors=tensors,
        findings=tuple(sorted(kept, key=lambda f: f.sort_key())),
        depth=layers,
        depth_assumptions=depth.assumptions,
        data_files=tuple(sorted(data_files)),
    )


def _with_measurement(
    result: FileResult,
    loaded: LoadedModel,
    graph: ModelGraph,
    shapes: Mapping[str, tuple[int, ...]],
) -> FileResult:
    """Measured output scale per layer beside the prediction; a model the runtime cannot run
    keeps its prediction and says why in a note (stderr), not an error."""
    if result.error is not None or not result.depth:
        return result
    by_name = {n.name: n for n in graph.nodes}
    outputs = {d.node: by_name[d.node].outputs[0] for d in result.depth if d.node in by_name}
    vocab = _vocab_of_inputs(graph)
    try:
        measured = measure_outputs(loaded, sorted(set(outputs.values())), vocab, shapes)
    except PropagationError as exc:
        return replace(result, notes=(*result.notes, f"--propagate could not run the model: {exc}"))
    depth = tuple(
        replace(d, measured_log10_output=_log10(measured.get(outputs.get(d.node, ""), 0.0)))
        for d in result.depth
    )
    return replace(result, depth=depth)


def _vocab_of_inputs(graph: ModelGraph) -> dict[str, int]:
    """Integer graph inputs that index an embedding table: their valid range."""
    tables = {s.name: s.shape[0] for s in graph.sites if s.role == Role.EMBEDDING and s.shape}
    vocab: dict[str, int] = {}
    for name in sorted(graph.index.graph_inputs):
        for node, slot in graph.index.consumers_of(name):
            if node.op_type == "Gather" and slot == 1 and node.input(0) in tables:
                vocab[name] = tables[node.input(0)]
    return vocab


def _log10(x: float) -> float | None:
    return math.log10(x) if x > 0 and math.isfinite(x) else None


def _second_moments(stats: dict[str, SiteStats]) -> dict[str, float]:
    """E[w²] = std² + mean² per tensor: what a layer multiplies its input's second moment by."""
    out: dict[str, float] = {}
    for name, st in stats.items():
        m = st.moments
        if m.std is not None and m.mean is not None:
            out[name] = m.std * m.std + m.mean * m.mean
    return out


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
        normalized=bool(act and act.normalized) or site.into_norm,
        scheme=_scheme_label(st),
        mean=m.mean,
        std=m.std,
        expected_std=st.fit.expected_std,
        ratio=st.fit.ratio,
        min=m.min,
        max=m.max,
        uses=tuple(u.node for u in site.uses),
        quantized=site.quant is not None,
        histogram=st.histogram,
    )


def _scheme_label(st: SiteStats) -> str | None:
    if st.tied_to is not None:
        return f"tied({st.tied_to})"
    if st.fit.scheme is not None:
        return st.fit.scheme
    return st.vector.scheme if st.vector is not None else None
