"""initaudit.keras against real tf2onnx conversions of Keras 3 models: names by
``model.weights`` path, BatchNormalization folded into convs, nothing changed. Skipped, saying
why, where tensorflow or tf2onnx is not installed (the default test command)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="tensorflow is not installed: pip install -e '.[keras]'")
pytest.importorskip("tf2onnx", reason="tf2onnx is not installed: pip install -e '.[keras]'")
import keras

from initaudit import keras as ik
from initaudit.origins import Transform

pytestmark = pytest.mark.keras
L = keras.layers


def _labels(model: Any) -> dict[str, str]:
    exported = ik.export(model)
    return {o.tensor: o.label for o in ik.origins(model, exported.model).origins}


def _trained_bn(model: Any, seed: int = 0) -> Any:
    """Give every BatchNormalization its own trained-looking statistics, so a fold shows."""
    r = np.random.default_rng(seed)
    ranges = {
        "gamma": (0.5, 1.5),
        "beta": (-1, 1),
        "moving_mean": (-1, 1),
        "moving_variance": (0.5, 2),
    }
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            for v in layer.weights:
                lo, hi = ranges[v.path.rpartition("/")[2]]
                v.assign(r.uniform(lo, hi, v.shape).astype("float32"))
    return model


def test_dense_kernels_are_named_by_their_weight_paths() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            L.Dense(8, activation="relu", bias_initializer="random_normal", name="hidden"),
            L.Dense(3, name="logits"),
        ],
        name="mlp",
    )
    labels = set(_labels(model).values())
    assert {
        "mlp/hidden/kernel (Dense)",
        "mlp/hidden/bias (Dense)",
        "mlp/logits/kernel (Dense)",
    } <= labels


def test_conv2d_kernels_are_found_through_the_layout_change_and_the_fold() -> None:
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, use_bias=False, name="stem")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU()(x)
    x = L.Conv2D(8, 3, name="conv")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = L.Flatten()(x)
    model = _trained_bn(keras.Model(inputs, L.Dense(2, name="head")(x)))
    exported = ik.export(model)
    found = {o.label: o for o in ik.origins(model, exported.model).origins}
    folded = found["stem/kernel (Conv2D), folded from stem/kernel and stem_bn/*"]
    assert folded.transform is Transform.FOLDED
    bn = {f"stem_bn/{k}" for k in ("gamma", "beta", "moving_mean", "moving_variance")}
    assert set(folded.sources) == {"stem/kernel", *bn}
    assert (
        "stem_bn/beta (BatchNormalization), folded from stem_bn/* into stem (which has no bias)"
        in found
    )
    assert "conv/kernel (Conv2D)" in found
    assert "depthwise/kernel (DepthwiseConv2D)" in found


def test_lstm_and_gru_weights_keep_their_cell_paths() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5, 4)), L.LSTM(6, name="lstm"), L.RepeatVector(3), L.GRU(5, name="gru")],
        name="rnn",
    )
    labels = set(_labels(model).values())
    assert {
        "rnn/lstm/lstm_cell/kernel (LSTM)",
        "rnn/lstm/lstm_cell/recurrent_kernel (LSTM)",
        "rnn/lstm/lstm_cell/bias (LSTM)",
        "rnn/gru/gru_cell/kernel (GRU)",
    } <= labels


def _cnn(name: str = "net") -> Any:
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU()(x)
    x = L.Flatten()(x)
    x = L.Dense(32, activation="relu", name="dense")(x)
    return keras.Model(inputs, L.Dense(4, name="dense_1")(x), name=name)


def test_assert_initialized_passes_on_a_default_model() -> None:
    report = ik.assert_initialized(_cnn())
    [result] = report.files
    assert result.path == "<keras net>"
    assert result.exporter is not None and result.exporter.startswith("tf2onnx ")
    assert {t.source for t in result.tensors} >= {
        "dense/kernel (Dense)",
        "conv/kernel (Conv2D), folded from conv/kernel and bn/*",
    }


def test_assert_initialized_names_a_zeroed_dense_kernel_by_its_path() -> None:
    model = _cnn()
    model.get_layer("dense").kernel.assign(np.zeros((1568, 32), "float32"))
    with pytest.raises(AssertionError) as raised:
        ik.assert_initialized(model)
    message = str(raised.value)
    assert "<keras net>: dense/kernel (Dense) [MatMul " in message
    assert "IA101 error: all 50176 values of this weight are 0" in message
    assert "ReadVariableOp" not in message


def test_audit_leaves_the_model_and_rng_as_they_were() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            L.Conv2D(4, 3),
            L.BatchNormalization(),
            L.Dropout(0.5),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    model.layers[0].trainable = False
    np.random.seed(3)
    random.seed(4)
    before = (
        [v.numpy().copy() for v in model.weights],
        [layer.trainable for layer in model.layers],
    )
    rng = (np.random.get_state()[1].copy(), random.getstate())
    ik.audit(model)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before[0], model.weights, strict=True))
    assert [layer.trainable for layer in model.layers] == before[1]
    assert (np.random.get_state()[1] == rng[0]).all() and random.getstate() == rng[1]


def test_a_model_without_inputs_says_how_to_give_them() -> None:
    class Unbuilt(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x: Any) -> Any:
            return self.dense(x)

    with pytest.raises(ik.ExportError, match="input_signature="):
        ik.export(Unbuilt())
