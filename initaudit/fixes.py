"""Fixes in the user's framework: ``nn.init.kaiming_normal_`` for PyTorch, ``kernel_initializer=
keras.initializers.HeNormal()`` for Keras, both when the model does not say where it came from.

The framework is read from the model's ``producer_name`` (torch.onnx writes ``pytorch``,
tf2onnx ``tf2onnx``); ``initaudit.torch`` and ``initaudit.keras`` export in process, so their
models always say. Keras spells every fan-based scheme as a ``VarianceScaling`` (scale = gain²,
mode, distribution; init-reference.md §2.1); the named initializers are shorthands for some.
"""

from __future__ import annotations

from dataclasses import dataclass

from initaudit._compat import StrEnum
from initaudit.graph.model import Role, WeightSite
from initaudit.stats.model import Family, Scheme


class Framework(StrEnum):
    TORCH = "torch"
    KERAS = "keras"


BOTH = (Framework.TORCH, Framework.KERAS)
# producer_name (lower case) -> the framework its users write fixes in.
_PRODUCERS = {
    "pytorch": (Framework.TORCH,),
    "onnxscript": (Framework.TORCH,),  # torch.onnx's dynamo exporter is built on it
    "tf2onnx": (Framework.KERAS,),
    "keras2onnx": (Framework.KERAS,),
    "keras": (Framework.KERAS,),
}


def frameworks_of(producer_name: str) -> tuple[Framework, ...]:
    """The frameworks a fix is written for: the producer's, else both."""
    return _PRODUCERS.get(producer_name.strip().lower(), BOTH)


@dataclass(frozen=True, kw_only=True)
class Fix:
    """One suggestion in each framework's words; :meth:`text` picks what the model needs."""

    torch: str
    keras: str

    def text(self, frameworks: tuple[Framework, ...]) -> str:
        if frameworks == (Framework.TORCH,):
            return self.torch
        if frameworks == (Framework.KERAS,):
            return self.keras
        return f"PyTorch: {self.torch}; Keras: {self.keras}"


# (scale, mode, distribution family) -> Keras' named initializer for that VarianceScaling.
# HeNormal and the other *Normal are truncated; the std is what the fix is about.
_NAMED = {
    (2.0, "fan_in", "normal"): "HeNormal()",
    (2.0, "fan_in", "uniform"): "HeUniform()",
    (1.0, "fan_avg", "normal"): "GlorotNormal()",
    (1.0, "fan_avg", "uniform"): "GlorotUniform()",
    (1.0, "fan_in", "normal"): "LecunNormal()",
    (1.0, "fan_in", "uniform"): "LecunUniform()",
}
_ARGUMENT = {
    Role.RECURRENT: "recurrent_initializer",
    Role.EMBEDDING: "embeddings_initializer",
}


def scheme_fix(scheme: Scheme, site: WeightSite) -> Fix:
    """``scheme`` as each framework writes it for this tensor (``scheme.fix`` is PyTorch's)."""
    return Fix(torch=scheme.fix, keras=f"{_ARGUMENT.get(site.role, 'kernel_initializer')}="
               f"keras.initializers.{_keras_initializer(scheme, site)}")  # fmt: skip


def _keras_initializer(scheme: Scheme, site: WeightSite) -> str:
    family = "uniform" if scheme.family == Family.UNIFORM else "normal"
    if scheme.fixed or not site.fan_in or not site.fan_out:
        if scheme.family == Family.UNIFORM:
            return f"RandomUniform(-{scheme.bound:.4g}, {scheme.bound:.4g})"
        if scheme.family == Family.TRUNC_NORMAL:
            return f"TruncatedNormal(stddev={scheme.std:.4g})"
        return f"RandomNormal(stddev={scheme.std:.4g})"
    mode, fan = _mode(scheme, site)
    scale = round(scheme.std * scheme.std * fan, 4)
    named = _NAMED.get((scale, mode, family))
    if named is not None:
        return named
    distribution = {"uniform": "uniform", "trunc_normal": "truncated_normal"}.get(
        scheme.family, "untruncated_normal"
    )
    return f'VarianceScaling(scale={scale:.4g}, mode="{mode}", distribution="{distribution}")'


def _mode(scheme: Scheme, site: WeightSite) -> tuple[str, float]:
    fan_in, fan_out = site.fan_in or 1, site.fan_out or 1
    if scheme.key in ("xavier_uniform", "xavier_normal", "glorot_normal", "glorot_uniform"):
        return "fan_avg", (fan_in + fan_out) / 2.0
    if "fan_out" in scheme.label:
        return "fan_out", float(fan_out)
    return "fan_in", float(fan_in)


# Suggestions that name no scheme of their own, shared by several rules.
FAN_AWARE = Fix(
    torch="initialize it with a fan-aware scheme (framework default, kaiming_uniform_ or "
    "xavier_uniform_)",
    keras="keep the layer's default kernel_initializer (glorot_uniform) or pass "
    "kernel_initializer=keras.initializers.HeNormal() before ReLU",
)
DEEP_RELU = Fix(
    torch='kaiming_normal_(w, nonlinearity="relu") for ReLU layers, xavier with the '
    "activation's gain otherwise, or normalization / residual connections",
    keras="kernel_initializer=keras.initializers.HeNormal() for ReLU layers, GlorotUniform() "
    "otherwise, or BatchNormalization / residual connections",
)
