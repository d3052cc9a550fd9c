"""The records every stage may name: a rule's :class:`Finding` and its :class:`Severity`.

They live in neither the rules nor the report stage, so configuration (``fail-on``), rules and
reporters all import them from here and no stage imports a later one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    """Ordered so ``--fail-on warning`` means "warning or worse"."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True)
class Finding:
    """One problem with one tensor (or, when ``tensor`` is None, with the whole model).

    ``rule`` is the code (``IA101``); ``node``/``op_type`` name the node that gives the tensor
    its role; ``fix`` is a one-line suggestion, when there is one. ``source`` is the tensor as
    the user's framework names it (``encoder.layers.0.linear1.weight (nn.Linear)``) when the
    model was exported in process (``initaudit.torch``, ``initaudit.keras``); ``tensor`` stays
    the ONNX name, which config overrides and baselines match.
    """

    rule: str
    severity: Severity
    tensor: str | None  # None for model-level findings
    node: str | None
    message: str
    op_type: str | None = None
    fix: str | None = None
    source: str | None = None
    # The tensors a model-level finding blames, largest cause first (IA203's contributions):
    # what precedence.py reads to tell a consequence from its root cause. Not in the JSON.
    related: tuple[str, ...] = ()

    def sort_key(self) -> tuple[int, str, str, str]:
        # Model-level findings first, then by tensor name and rule code: stable byte for byte.
        return (0 if self.tensor is None else 1, self.tensor or "", self.rule, self.message)
