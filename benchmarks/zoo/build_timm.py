"""Build a timm model at random init (``pretrained=False``), with its seeded input."""

from __future__ import annotations

import timm
import torch
from zoo.built import Built, seeded
from zoo.records import ModelSpec


def build(spec: ModelSpec) -> Built:
    """The model with every regularizer at its default (timm defaults drop rates to 0), and
    an N(0, 1) image batch of the pretrained config's input size."""
    torch.manual_seed(0)
    model = timm.create_model(spec.name, pretrained=False)
    generator = seeded()
    x = torch.randn(*spec.input_shape, generator=generator)
    return Built(module=model, args=(x,), input_names=("x",))
