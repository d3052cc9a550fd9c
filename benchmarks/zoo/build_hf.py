"""Build a Hugging Face transformers model from a small config, at its own random init.

The config is the model type's default (``AutoConfig.for_model``) with its sizes shrunk by
name (hidden 64, 2 layers, 4 heads, FFN 128, vocabulary 512, images 64 px); nested
sub-configs (text/vision/audio) are shrunk the same way. ``AutoModel.from_config`` then runs
the model's own ``post_init()`` / ``_init_weights``. Nothing is downloaded.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES
from zoo.built import Built, seeded
from zoo.records import ModelSpec

WIDTH = 64
CAPS: dict[str, int] = {
    **dict.fromkeys(
        (
            "hidden_size",
            "d_model",
            "n_embd",
            "embed_dim",
            "dim",
            "embedding_size",
            "word_embed_proj_dim",
        ),
        WIDTH,
    ),
    **dict.fromkeys(
        (
            "num_hidden_layers",
            "n_layer",
            "num_layers",
            "n_layers",
            "encoder_layers",
            "decoder_layers",
            "num_encoder_layers",
            "num_decoder_layers",
        ),
        2,
    ),
    **dict.fromkeys(
        (
            "num_attention_heads",
            "n_head",
            "n_heads",
            "encoder_attention_heads",
            "decoder_attention_heads",
            "num_heads",
        ),
        4,
    ),
    **dict.fromkeys(
        (
            "intermediate_size",
            "ffn_dim",
            "encoder_ffn_dim",
            "decoder_ffn_dim",
            "d_ff",
            "n_inner",
            "ffn_hidden_size",
        ),
        2 * WIDTH,
    ),
    **dict.fromkeys(("moe_intermediate_size", "shared_expert_intermediate_size"), WIDTH),
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts"), 4),
    "num_experts_per_tok": 2,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "d_kv": 16,
    "projection_dim": 32,
    "vocab_size": 512,
    **dict.fromkeys(("max_position_embeddings", "n_positions"), 128),
    **dict.fromkeys(("max_source_positions", "max_target_positions"), 32),
    "image_size": 64,
    "num_conv_pos_embeddings": 16,
}
LIST_WIDTHS = ("hidden_sizes", "embed_dims", "dims", "conv_dim", "widths")
LIST_DEPTHS = ("depths", "num_layers_per_stage", "layer_depths")
LIST_HEADS = ("num_heads", "num_attention_heads")
DROPPED = ("dtype", "torch_dtype", "transformers_version", "architectures", "_name_or_path")
BACKBONE_OUTPUTS = ("out_features", "out_indices")
TEXT_TOKENS = 16
AUDIO_SAMPLES = 4000


def catalog() -> list[ModelSpec]:
    """Every model type AutoModel can build; single-config ones first (most export)."""
    specs = []
    for model_type in sorted(MODEL_MAPPING_NAMES):
        if model_type not in CONFIG_MAPPING_NAMES:
            continue
        try:
            config_cls = type(AutoConfig.for_model(model_type))
        except Exception:  # a config that cannot be made: the type is not tried
            continue
        composite = bool(getattr(config_cls, "sub_configs", {}))
        specs.append(
            ModelSpec(
                source="hf",
                name=model_type,
                group=model_type,
                extra={"composite": composite, "model_class": MODEL_MAPPING_NAMES[model_type]},
            )
        )
    return sorted(specs, key=lambda s: (s.extra["composite"], s.name))


def _shrink_list(key: str, value: list[Any]) -> list[Any]:
    if not value or not all(isinstance(v, int) for v in value):
        return value
    if key in LIST_DEPTHS:
        return [1] * len(value)
    if key in LIST_HEADS:
        return [min(v, 2**i) for i, v in enumerate(value)]
    if key in LIST_WIDTHS:
        if len(set(value)) == 1:
            return [min(value[0], 32)] * len(value)
        return [min(v, 16 * 2**i) for i, v in enumerate(value)]
    return value


def shrink(config: dict[str, Any]) -> dict[str, Any]:
    """The config with its sizes capped; sub-configs (dicts with a model_type) recursively."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in DROPPED:
            continue
        if isinstance(value, dict) and "model_type" in value:
            out[key] = shrink(value)
        elif isinstance(value, list):
            out[key] = _shrink_list(key, value)
        elif isinstance(value, int) and not isinstance(value, bool) and key in CAPS:
            out[key] = min(value, CAPS[key])
        else:
            out[key] = value
    _per_layer_lists(config, out)
    vocab = out.get("vocab_size")
    if isinstance(vocab, int):
        for key, value in list(out.items()):
            if key.endswith("_token_id") and isinstance(value, int) and value >= vocab:
                out[key] = vocab - 1
    return out


def _per_layer_lists(config: dict[str, Any], out: dict[str, Any]) -> None:
    """Lists with one entry per layer (``layer_types``, MoE layer maps) follow the new depth;
    backbone ``out_features``/``out_indices`` name stages that may no longer exist."""
    for key in ("num_hidden_layers", "num_layers", "n_layer"):
        old, new = config.get(key), out.get(key)
        if not isinstance(old, int) or not isinstance(new, int) or old == new:
            continue
        for name, value in list(out.items()):
            if isinstance(value, list) and len(value) == old and name not in LIST_DEPTHS:
                out[name] = value[:new]
    for key in BACKBONE_OUTPUTS:
        out.pop(key, None)


def small_config(model_type: str) -> Any:
    small = shrink(AutoConfig.for_model(model_type).to_dict())
    small.pop("model_type", None)
    return AutoConfig.for_model(model_type, **small)


class Positional(nn.Module):
    """Calls a transformers model with keyword inputs given positionally, no caches, and
    returns its tensor outputs (the exporters want tensors in and tensors out)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...], options: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.options = options

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.names, args, strict=True)), **self.options)
        items = out.to_tuple() if hasattr(out, "to_tuple") else out
        items = items if isinstance(items, tuple | list) else (items,)
        return tuple(t for t in items if isinstance(t, torch.Tensor))


def _vocab(config: Any) -> int:
    for holder in (config, getattr(config, "text_config", None)):
        vocab = getattr(holder, "vocab_size", None)
        if isinstance(vocab, int) and vocab > 0:
            return vocab
    return 2


def _image_shape(config: Any) -> tuple[int, ...]:
    holder = getattr(config, "vision_config", None) or config
    size = getattr(holder, "image_size", 64)
    height, width = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    return (2, getattr(holder, "num_channels", 3), height, width)


def make_input(name: str, config: Any, generator: torch.Generator) -> torch.Tensor | None:
    """A seeded batch of two for one forward argument, or None when we cannot make it."""
    if name in ("input_ids", "decoder_input_ids"):
        return torch.randint(0, _vocab(config), (2, TEXT_TOKENS), generator=generator)
    if name == "pixel_values":
        return torch.randn(*_image_shape(config), generator=generator)
    if name == "input_values":
        return torch.randn(2, AUDIO_SAMPLES, generator=generator)
    if name == "input_features":
        bins = getattr(config, "num_mel_bins", None) or getattr(config, "feature_size", 80)
        frames = 2 * getattr(config, "max_source_positions", 32)
        return torch.randn(2, bins, frames, generator=generator)
    return None


def forward_inputs(model: nn.Module, config: Any) -> tuple[list[str], list[str]]:
    """(inputs to pass, required inputs we cannot make)."""
    params = inspect.signature(model.forward).parameters
    main = getattr(model, "main_input_name", "input_ids")
    names = [main]
    if "decoder_input_ids" in params and getattr(config, "is_encoder_decoder", False):
        names.append("decoder_input_ids")
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in names
    ]
    return names, missing


def build(spec: ModelSpec) -> Built:
    config = small_config(spec.name)
    torch.manual_seed(0)
    model = AutoModel.from_config(config, attn_implementation="eager")
    model = model.float()
    names, missing = forward_inputs(model, config)
    if missing:
        raise NotImplementedError(f"forward needs inputs the sweep cannot make: {missing}")
    generator = seeded()
    tensors = [make_input(n, config, generator) for n in names]
    unknown = [n for n, t in zip(names, tensors, strict=True) if t is None]
    if unknown:
        raise NotImplementedError(f"no generator for input {unknown}")
    params = inspect.signature(model.forward).parameters
    options: dict[str, Any] = {k: False for k in ("use_cache", "return_dict") if k in params}
    args = tuple(t for t in tensors if t is not None)
    return Built(
        module=Positional(model, tuple(names), options), args=args, input_names=tuple(names)
    )
