"""The Python API: what a user's own pytest can assert about a model, without the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import initaudit
from initaudit import Config, Override, Report, Severity
from tests import _models as M


def _zero_fc2() -> onnx.ModelProto:
    ws = [M.torch_default((32, 16), 16), np.zeros((8, 32), np.float32), M.torch_default((4, 8), 8)]
    return M.mlp(ws)


def test_a_users_test_on_a_clean_model(tmp_path: Path) -> None:
    """What the README shows: audit an exported model in a test and assert it is clean."""
    path = M.save(M.clean_mlp(), tmp_path / "model.onnx")
    report = initaudit.audit(path)
    assert report.findings == (), report.findings
    assert report.exit_code() == 0
    fc1 = report.files[0].tensor("fc1.weight")
    assert (fc1.role, fc1.fan_in, fc1.fan_out, fc1.activation) == ("weight", 64, 128, "relu")


def test_model_proto_and_path_give_the_same_findings(tmp_path: Path) -> None:
    model = _zero_fc2()
    from_proto = initaudit.audit(model)
    from_path = initaudit.audit(str(M.save(model, tmp_path / "m.onnx")))
    assert from_proto.files[0].path == initaudit.MODEL_PROTO_PATH
    assert from_proto.findings == from_path.findings
    [finding] = from_proto.findings
    assert (finding.rule, finding.severity, finding.tensor) == (
        "IA101",
        Severity.ERROR,
        "fc2.weight",
    )
    assert from_proto.exit_code() == 1


def test_config_selects_rules_overrides_and_fail_level() -> None:
    model = _zero_fc2()
    assert initaudit.audit(model, Config(ignore=("IA1",))).findings == ()
    allow = Config(overrides=(Override(tensors=("fc2.*",), allow_zeros=True),))
    assert initaudit.audit(model, allow).findings == ()
    report = initaudit.audit(model, Config(fail_on="never"))
    assert report.findings and report.exit_code() == 0
    with pytest.raises(ValueError, match="fail_on must be one of"):
        Config(fail_on="fatal")


def test_bad_file_is_a_result_not_an_exception(tmp_path: Path) -> None:
    report = initaudit.audit(tmp_path / "missing.onnx")
    assert isinstance(report, Report)
    error = report.files[0].error
    assert error is not None and error.code == "not-found"
    assert report.exit_code() == 2


def test_external_data_proto_must_be_passed_by_path(tmp_path: Path) -> None:
    model = M.clean_mlp()
    onnx.save_model(
        model, tmp_path / "m.onnx", save_as_external_data=True, size_threshold=0, location="m.data"
    )
    assert initaudit.audit(tmp_path / "m.onnx").findings == ()
    lazy = onnx.load_model(tmp_path / "m.onnx", load_external_data=False)
    with pytest.raises(ValueError, match="pass the model's path"):
        initaudit.audit(lazy)


def test_public_names_are_exported_and_typed() -> None:
    assert set(initaudit.__all__) >= {
        "audit",
        "load_config",
        "Config",
        "Report",
        "FileResult",
        "Finding",
        "TensorReport",
        "Severity",
    }
    assert all(hasattr(initaudit, name) for name in initaudit.__all__)
    assert (Path(initaudit.__file__).parent / "py.typed").is_file()
