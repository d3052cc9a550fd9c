from __future__ import annotations

import re
from collections.abc import Iterator

from initaudit.findings import Finding, Severity
from initaudit.fixes import FAN_AWARE
from initaudit.graph.model import End, Kind, WeightSite
from initaudit.rules._base import Rule, RuleContext


class ZeroWeight(Rule):
    """Weight tensor is exactly zero everywhere.

    ## What it checks
    A weight matrix, convolution kernel, recurrent matrix or embedding table (not a bias or a
    normalization parameter, which are zero by design) whose every element is 0.

    ## Why it matters
    Every unit of the layer computes the same thing and gets the same gradient, so the layer
    cannot learn distinct features; with two zero layers in a row no gradient flows at all.

    ## Example
    Gemm `fc2.weight` [128, 128] after `nn.init.zeros_(fc2.weight)`: min = max = 0.0.

    ## Use instead
    Keep the framework default or call a fan-aware init, e.g. `nn.init.kaiming_uniform_(w,
    nonlinearity="relu")` before a ReLU or `nn.init.xavier_uniform_(w)` before tanh.

    Zeros are a technique, not a bug, where the layer's output reaches a linear end: the last
    layer of a residual branch (torchvision `zero_init_residual`, Fixup, LoRA-B, adaLN-Zero),
    a readout or head (muP, Fixup), a gate, or a muP query projection; and a layer an
    exporter folded a γ = 0 BatchNorm into (timm's zero_init_last, torchvision's
    zero_init_residual: the fold carries the zero into the conv). There the finding is
    reported at severity info and names the pattern it matches.
    """

    code = "IA101"
    name = "zero-weight"
    severity = Severity.ERROR
    summary = "weight is all zeros"

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        for site, st in ctx.weights():
            m = st.moments
            if not (m.size > 0 and m.n_nonfinite == 0 and m.n_zero == m.size):
                continue
            pattern = intentional_zero(site)
            if pattern is None:
                yield self.finding(
                    site,
                    f"all {m.size} values of this {site.role} are 0",
                    fix=ctx.fix(FAN_AWARE),
                )
            else:
                yield self.finding(
                    site,
                    f"all {m.size} values are 0; this matches {pattern}, which is usually "
                    "intentional",
                    fix=silence_snippet(site.name),
                    severity=Severity.INFO,
                )


# Where a zero weight is a known technique rather than a bug: the layer's output reaches a
# linear end, so the rest of the network still sees (and trains) a non-degenerate signal.
_INTENTIONAL = {
    End.RESIDUAL: "a zero-initialized last layer of a residual branch (zero_init_residual, "
    "Fixup, LoRA-B, adaLN-Zero)",
    End.OUTPUT: "a zero-initialized readout/head (muP, Fixup, timm 'jax' head init)",
    End.GATE: "a zero-initialized gate or modulation (adaLN-Zero, gated units)",
    End.ATTENTION: "a zero-initialized query/key projection (muP)",
}


# A BatchNorm with γ = 0 folded into the layer before it at export zeroes that layer's weight:
# timm's zero_init_last (cspnet.py:237-238, byobnet, resnet) and torchvision's
# zero_init_residual zero the last BatchNorm of a block, which the fold then carries.
_FOLDED_ZERO = (
    "a zero-initialized BatchNorm (γ = 0: zero_init_last / zero_init_residual) that the "
    "exporter folded into this layer"
)


def silence_snippet(tensor: str) -> str:
    """The fix of an intentional zero: the exact override that silences it (ONNX has no
    ``# noqa``), the tensor's name escaped as an fnmatch glob inside a TOML string."""
    glob = re.sub(r"([*?[])", r"[\1]", tensor)
    return (
        "if intended, add to pyproject.toml:\n"
        "    [[tool.initaudit.overrides]]\n"
        f"    tensors = [{_toml_string(glob)}]\n"
        "    allow-zeros = true\n"
        "otherwise initialize it with a fan-aware scheme"
    )


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = "".join(
        "\\" + c if c in '"\\' else f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c
        for c in text
    )
    return f'"{escaped}"'


def intentional_zero(site: WeightSite) -> str | None:
    if site.folded_norm:
        return _FOLDED_ZERO
    act = site.activation
    if act is None or act.kind != Kind.LINEAR or act.end is None:
        return None
    return _INTENTIONAL.get(act.end)
