"""One root cause, one finding (precedence.py): what a user sees for one defect is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from initaudit.cli import cli
from initaudit.findings import Finding, Severity
from initaudit.precedence import root_causes
from tests._click import runner

TORCH = Path(__file__).resolve().parent.parent / "fixtures" / "torch"


def _codes(*args: str | Path) -> tuple[int, list[tuple[str, str]]]:
    """Exit status and (tensor, rule) of every finding line, from the text output."""
    r = runner().invoke(cli, ["--isolated", "-q", *map(str, args)])
    rows = []
    for line in r.stdout.splitlines():
        if line.startswith(" "):
            continue  # a fix line
        head = line.split(" ", 1)[1]  # drop "path:"
        tensor, rest = head.split(" ", 1)
        code = next(w for w in rest.split() if w.startswith("IA"))
        rows.append((tensor, code))
    return r.exit_code, rows


def test_a_torch_empty_tensor_is_one_garbage_finding_not_also_a_depth_explosion() -> None:
    """fc2.weight allocated with torch.empty: IA105; its garbage also explodes the predicted
    signal forward and backward, which is its consequence, not a second and third problem."""
    code, rows = _codes(TORCH / "mlp_uninitialized__dynamo.onnx")
    assert (code, rows) == (1, [("fc2.weight", "IA105")])


def test_ignoring_the_cause_brings_its_consequences_back() -> None:
    """Consequences are dropped only when their cause is reported."""
    code, rows = _codes(TORCH / "mlp_uninitialized__dynamo.onnx", "--ignore", "IA105")
    assert code == 0 and sorted(rows) == [("(model)", "IA203"), ("(model)", "IA203")]


@pytest.fixture
def bert_with_rand_query(tmp_path: Path) -> Path:
    """A real BERT export whose first query projection was drawn with torch.rand (U[0, 1))."""
    path = tmp_path / "bert.onnx"
    shutil.copy(TORCH / "hf_bert_tiny__dynamo.onnx", path)
    m = onnx.load(path)
    (q,) = [t for t in m.graph.initializer if t.name == "val_40"]  # layer.0 query, transposed
    shape = tuple(q.dims)
    q.CopyFrom(numpy_helper.from_array(np.random.default_rng(0).random(shape, np.float32), q.name))
    onnx.save(m, path)
    return path


def test_a_torch_rand_query_is_reported_as_its_root_cause(bert_with_rand_query: Path) -> None:
    """The issue's case: one-sided (IA202) is the cause, and the one finding."""
    code, rows = _codes(bert_with_rand_query)
    assert (code, rows) == (0, [("val_40", "IA202")])


def test_a_one_sided_block_is_not_also_a_sibling_outlier(tmp_path: Path) -> None:
    """Six repeated blocks, layers.3 drawn with torch.rand: unlike its siblings (IA204)
    because it is one-sided (IA202). Ignore the cause and the consequence is reported."""
    from tests import _models as M

    rng = np.random.default_rng(0)
    ws = [
        rng.random((64, 64), np.float32) if k == 3 else M.torch_default((64, 64), 64, seed=k)
        for k in range(6)
    ]
    model = M.save(
        M.mlp(ws, names=[f"layers.{k}.fc.weight" for k in range(6)]), tmp_path / "m.onnx"
    )
    _, rows = _codes(model)
    assert [code for tensor, code in rows if tensor == "layers.3.fc.weight"] == ["IA202"]
    _, rows = _codes(model, "--ignore", "IA202")
    assert [code for tensor, code in rows if tensor == "layers.3.fc.weight"] == ["IA204"]


def _f(rule: str, tensor: str | None, related: tuple[str, ...] = ()) -> Finding:
    return Finding(rule, Severity.WARNING, tensor, None, "m", related=related)


@pytest.mark.parametrize(
    ("findings", "kept"),
    [
        # Integrity first: a broken tensor's statistics mean nothing.
        ([_f("IA101", "w"), _f("IA201", "w"), _f("IA401", "w")], ["IA101"]),
        ([_f("IA105", "w"), _f("IA103", "w"), _f("IA104", "w")], ["IA105"]),
        ([_f("IA103", "w"), _f("IA104", "w")], ["IA103", "IA104"]),
        # A one-sided draw explains the scale, the siblings and the unfit shape.
        ([_f("IA201", "w"), _f("IA202", "w"), _f("IA204", "w"), _f("IA302", "w")], ["IA202"]),
        ([_f("IA201", "w"), _f("IA204", "w")], ["IA201"]),
        # Only the same tensor: another tensor's finding explains nothing here.
        ([_f("IA105", "a"), _f("IA201", "b")], ["IA105", "IA201"]),
        # Depth: a consequence when its largest contribution has a root cause of its own.
        ([_f("IA203", None, ("a", "b")), _f("IA105", "a")], ["IA105"]),
        ([_f("IA203", None, ("a", "b")), _f("IA201", "a")], ["IA201"]),
        ([_f("IA203", None, ("a", "b")), _f("IA201", "b")], ["IA203", "IA201"]),
        ([_f("IA203", None, ("a",)), _f("IA204", "a")], ["IA203", "IA204"]),
    ],
)
def test_the_precedence_table(findings: list[Finding], kept: list[str]) -> None:
    assert [f.rule for f in root_causes(findings)] == kept
