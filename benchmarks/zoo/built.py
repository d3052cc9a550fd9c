"""What a source's builder hands the worker: the module to export and its inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

INPUT_SEED = 0x200


def seeded() -> torch.Generator:
    """The generator of every model input: the export and the measurement see the same."""
    return torch.Generator().manual_seed(INPUT_SEED)


@dataclass(frozen=True, kw_only=True)
class Built:
    """``module(*args)`` is what is exported and measured; float inputs are N(0, 1) and
    token ids uniform over the vocabulary, as initaudit's ``--propagate`` draws them."""

    module: nn.Module
    args: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]

    def forward(self) -> object:
        return self.module(*self.args)
