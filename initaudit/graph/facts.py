"""Whole-model facts that per-tensor judgements need: depth, vocabulary sizes, width.

Depth-scaled inits (GPT-2's 0.02/sqrt(2L), GPT-NeoX's wang_init) depend on the number of
residual blocks L, which no single tensor knows. We take it from repeated names
(``h.7.attn.c_proj.weight``: the size of the ``h.*.attn.c_proj.weight`` group) and from the
number of layers that end a residual branch (one or two per block).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from initaudit.graph.model import MATRIX_ROLES, End, ModelFacts, Role, WeightSite

# A numeric path segment (layer index): "layers.7.mlp", "/encoder/layer.3/", "h_2.attn" no.
_INDEX = re.compile(r"(?<=[./])\d+(?=[./])")


def name_template(name: str) -> str | None:
    """``layers.*.mlp.fc1.weight`` for ``layers.7.mlp.fc1.weight``; None without an index."""
    template, n = _INDEX.subn("*", name)
    return template if n else None


def site_template(site: WeightSite) -> str | None:
    """The repeated-block template of a weight: from its name, else from the module it was
    exported from (dynamo names many weights ``val_12``; their node's scope still reads
    ``blocks.3.attn.proj``)."""
    return name_template(site.name) or (
        f"{t}#{site.op_type}" if (t := name_template(site.scope + ".")) else None
    )


def layer_index(site: WeightSite) -> int | None:
    """The block index of a weight in a repeated stack (``blocks.3.attn.proj`` -> 3), from its
    name or its module's scope; None outside a stack."""
    for text in (site.name, site.scope + "."):
        found = _INDEX.search(text)
        if found:
            return int(found.group(0))
    return None


def model_facts(sites: Sequence[WeightSite]) -> ModelFacts:
    weights = [s for s in sites if s.role in MATRIX_ROLES]
    groups = Counter(t for s in weights if (t := site_template(s)) is not None)
    residual = sum(1 for s in weights if s.activation and s.activation.end == End.RESIDUAL)
    depths = {max(groups.values(), default=0), residual, residual // 2}
    vocab = {s.fan_out for s in sites if s.role == Role.EMBEDDING and s.fan_out}
    fans = Counter(s.fan_in for s in weights if s.fan_in)
    top = max(fans.values(), default=0)
    widths = tuple(sorted(f for f, n in fans.items() if n == top))
    return ModelFacts(
        depths=tuple(sorted(d for d in depths if d > 0)),
        vocab_sizes=tuple(sorted(vocab)),
        widths=widths,
    )
