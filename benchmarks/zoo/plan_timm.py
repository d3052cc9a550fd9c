"""The timm catalog the sweep chooses from: every model, its module, family and size.

Run in the zoo venv (it imports timm): ``python -m zoo.plan_timm OUT.json``. Every model of
``timm.list_models()`` is built on the meta device (no memory, no init) to count its
parameters; ``zoo.select`` then keeps the smallest variants of every family and module.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import timm
import torch
from timm.models import get_pretrained_cfg
from zoo.records import ModelSpec

# Name prefixes that mark a port or a variant of another family, not a family of their own.
VARIANT_PREFIXES = frozenset({"tf", "legacy", "gluon", "hf", "timm", "test", "gc", "eca", "vit"})
LEADING_WORD = re.compile(r"[a-z]+")


def family(name: str) -> str:
    """``resnet18d`` -> ``resnet``; ``tf_efficientnet_b0`` -> ``tf_efficientnet``;
    ``vit_tiny_patch16_224`` -> ``vit_tiny``: the leading word of the first name token, and
    of the second when the first only says whose port or which variant it is."""
    tokens = name.split("_")
    head = LEADING_WORD.match(tokens[0])
    key = head.group(0) if head else tokens[0]
    if key in VARIANT_PREFIXES and len(tokens) > 1:
        second = LEADING_WORD.match(tokens[1])
        key = f"{key}_{second.group(0) if second else tokens[1]}"
    return key


def parameter_count(name: str) -> int | None:
    """Parameters of ``name`` built on the meta device, or None when it cannot be built."""
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            model = timm.create_model(name, pretrained=False)
    except Exception:  # a model that fails here fails in the export too; skip it in the plan
        return None
    return sum(p.numel() for p in model.parameters())


def input_size(name: str) -> tuple[int, ...]:
    cfg = get_pretrained_cfg(name)
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    return tuple(size) if size else (3, 224, 224)


def catalog() -> list[ModelSpec]:
    """Every timm model that builds, with its module, family and parameter count."""
    specs: list[ModelSpec] = []
    for module in sorted(timm.list_modules()):
        for name in sorted(timm.list_models(module=module)):
            count = parameter_count(name)
            if count is None:
                continue
            specs.append(
                ModelSpec(
                    source="timm",
                    name=name,
                    group=module,
                    parameters=count,
                    input_shape=(2, *input_size(name)),
                    extra={"family": family(name)},
                )
            )
    return specs


def main() -> None:
    out = Path(sys.argv[1])
    specs = catalog()
    out.write_text(json.dumps([s.to_json() for s in specs], indent=1) + "\n")


if __name__ == "__main__":
    main()
