"""Stage 2: a loaded model becomes its :class:`ModelGraph`.

Index the nodes, settle which values are constants, trace every stored float (or dequantized)
tensor to its uses, decide its site, then the whole-model facts. One tensor used by several
ops is one site, listing every use.
"""

from __future__ import annotations

from initaudit.graph.consts import find_constants
from initaudit.graph.facts import model_facts
from initaudit.graph.index import index_graph
from initaudit.graph.model import ModelGraph, WeightSite
from initaudit.graph.roles import Roles
from initaudit.graph.trace import Reach, Tracer
from initaudit.load import LoadedModel
from initaudit.store import is_float_type


def build_graph(loaded: LoadedModel) -> ModelGraph:
    index = index_graph(loaded.model)
    consts = find_constants(index, loaded.store)
    tracer = Tracer(index, consts, loaded.store)
    roles = Roles(index, consts)
    quant_params = tracer.quant_params()
    found: list[tuple[WeightSite, Reach | None]] = []
    for name, t in loaded.store.tensors.items():
        if t.origin.startswith("sparse") or name in quant_params or not name:
            continue
        reaches = list(tracer.trace(name, t.dims))
        quantized = any(r.quant for r in reaches)
        if not is_float_type(t.data_type) and not quantized:
            continue
        site, primary = roles.site(name, t.dims, t.dtype, reaches)
        # Scalars are audited too (a NaN mixing coefficient is a defect): op constants
        # (0.5, sqrt 2, eps) are role "other", which only the integrity rules read.
        found.append((site, primary))
    sites = tuple(roles.with_streams(roles.with_bias_fans(found)))
    return ModelGraph(index=index, consts=consts, sites=sites, facts=model_facts(sites))
