"""Messages people read: one way to write a factor everywhere, one comparison per IA201, and
fixes that can be pasted (numfmt.py has the style; README "Numbers in messages")."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from initaudit.cli import cli
from initaudit.numfmt import approx, factor, factor_log10
from tests import _models as M
from tests._click import runner

ROOT = Path(__file__).resolve().parent.parent
TORCH = ROOT / "fixtures" / "torch"
# What the old messages mixed: 4.86x, x63.5, 1/6.26x, (1e+02x), 1e+3.3, the 1e±2 band.
OLD_STYLES = re.compile(r"\d(?:\.\d+)?x\b|\bx\d|\b1/\d|1e[+-]\d+\.\d|1e±")


def _json(*args: str | Path, isolated: bool = True) -> dict:
    r = runner().invoke(
        cli, [*(["--isolated"] if isolated else []), "--format", "json", *map(str, args)]
    )
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.stdout)


def _messages(doc: dict) -> list[str]:
    return [f["message"] for fr in doc["files"] for f in fr["findings"]]


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (5.73, "≈5.7× larger"),
        (63.7, "≈64× larger"),  # not a tie: 10**log10(63.5) may round either way
        (1995.0, "≈2000× larger"),
        (3.4e5, "≈340,000× larger"),
        (3.4e20, "≈3.4e+20× larger"),
        (1 / 6.26, "≈6.3× smaller"),
        (1.02, "about the same"),
    ],
)
def test_one_factor_style(x: float, text: str) -> None:
    assert factor(x) == text
    assert factor_log10(np.log10(x)) == text


def test_approx_never_writes_a_fractional_power_of_ten() -> None:
    assert [approx(10**p) for p in (3.3, 6.3, 0.5)] == ["2000", "2.0e+06", "3.2"]


def test_no_message_of_any_fixture_uses_another_ratio_style(tmp_path: Path) -> None:
    deep = M.save(
        M.mlp([M.rng(k).normal(0, 0.05, (64, 64)).astype(np.float32) for k in range(6)]),
        tmp_path / "deep.onnx",
    )
    models = [*sorted(TORCH.glob("*.onnx")), deep]
    messages = _messages(_json("--fail-on", "never", *models))
    messages += _messages(
        _json("--fail-on", "never", "--ignore", "IA105", TORCH / "mlp_uninitialized__dynamo.onnx")
    )
    assert len(messages) > 10
    assert [m for m in messages if OLD_STYLES.search(m)] == []
    assert any("× larger" in m for m in messages) and any("× smaller" in m for m in messages)


def test_ia201_says_the_one_comparison_that_matters() -> None:
    """fc1.weight drawn N(0, 1) before a ReLU: compared with the ReLU scheme, once; no
    'nearest plausible scheme kaiming_normal(fan_in, tanh)' on a ReLU layer."""
    doc = _json(TORCH / "mlp_naive_normal__dynamo.onnx")
    (fc1,) = [f for f in doc["files"][0]["findings"] if f["tensor"] == "fc1.weight"]
    assert fc1["message"] == (
        "std 1.01 is ≈5.7× larger than the 0.177 kaiming_normal(fan_in, relu) gives this "
        "layer (fan_in=64, before relu)"
    )
    assert fc1["fix"] == 'nn.init.kaiming_normal_(w, nonlinearity="relu") gives std 0.177 here'


def test_ia203_names_the_layer_a_gradient_came_through(tmp_path: Path) -> None:
    """Backward, the gradient at fc1 is large because it came back through fc2's garbage:
    the contribution is fc2.weight's, as it is forward."""
    doc = _json("--ignore", "IA105", TORCH / "mlp_uninitialized__dynamo.onnx")
    for m in _messages(doc):
        assert m.endswith("largest contributions: fc2.weight (≈1.6e+41× larger)"), m


def test_ia104_says_all_units_are_identical_when_they_are(tmp_path: Path) -> None:
    row = M.torch_default((1, 32), 32)
    ws = [M.torch_default((32, 16), 16), np.repeat(row, 8, axis=0), M.torch_default((4, 8), 8)]
    doc = _json(M.save(M.mlp(ws), tmp_path / "m.onnx"))
    (f,) = [f for f in doc["files"][0]["findings"] if f["rule"] == "IA104"]
    assert f["message"] == "all 8 output units are identical"


def test_an_intentional_zero_shows_the_override_that_silences_it(tmp_path: Path) -> None:
    """ONNX has no `# noqa`: the info finding's fix is the exact pyproject.toml snippet, and
    pasting it silences the finding."""
    model = tmp_path / "m.onnx"
    shutil.copy(TORCH / "mlp_zero_init_head__dynamo.onnx", model)
    (f,) = _json(model)["files"][0]["findings"]
    assert (f["rule"], f["severity"]) == ("IA101", "info")
    intro, *snippet, otherwise = f["fix"].splitlines()
    assert intro == "if intended, add to pyproject.toml:"
    assert otherwise == "otherwise initialize it with a fan-aware scheme"
    assert [s.strip() for s in snippet] == [
        "[[tool.initaudit.overrides]]",
        'tensors = ["fc3.weight"]',
        "allow-zeros = true",
    ]
    # Pasted into the pyproject.toml beside the model, it silences the finding (found from
    # the model's folder, wherever the command runs).
    (tmp_path / "pyproject.toml").write_text("\n".join(s.strip() for s in snippet) + "\n")
    doc = _json(model, isolated=False)
    assert doc["files"][0]["findings"] == []


def test_a_snippet_escapes_glob_characters_in_the_name(tmp_path: Path) -> None:
    from initaudit.rules.ia101_zero_weight import silence_snippet

    line = silence_snippet('head[0].w*"x"').splitlines()[2]
    assert line == '    tensors = ["head[[]0].w[*]\\"x\\""]'
