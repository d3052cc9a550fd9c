"""Tiny ONNX models built in code with onnx.helper, for tests and fixtures/make_fixtures.py.

Every builder is deterministic: values come from ``rng(seed)``. Weights follow PyTorch's
default (kaiming_uniform a=sqrt(5): U(+-1/sqrt(fan_in))) unless a test passes its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20
FLOAT = TensorProto.FLOAT


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def torch_default(shape: Sequence[int], fan_in: int, seed: int = 0) -> np.ndarray:
    """PyTorch's nn.Linear/nn.Conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    b = 1.0 / math.sqrt(fan_in)
    return rng(seed).uniform(-b, b, size=tuple(shape)).astype(np.float32)


def tensor(name: str, arr: np.ndarray, data_type: int | None = None) -> TensorProto:
    """A raw_data initializer; ``data_type`` overrides for bf16/float8 (values pre-cast)."""
    if data_type is None:
        return numpy_helper.from_array(np.asarray(arr), name)
    np_type = helper.tensor_dtype_to_np_dtype(data_type)
    t = numpy_helper.from_array(np.asarray(arr).astype(np_type), name)
    return t


def value_info(
    name: str, shape: Sequence[int | str] | None, elem: int = FLOAT
) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape) if shape is not None else None)


def model(
    nodes: Sequence[onnx.NodeProto],
    inits: Sequence[TensorProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    opset: int = OPSET,
    functions: Sequence[onnx.FunctionProto] = (),
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(
        graph, opset_imports=opsets, functions=list(functions), producer_name="initaudit-tests"
    )
    m.ir_version = 10
    return m


def mlp(
    weights: Sequence[np.ndarray],
    act: str = "Relu",
    bias: bool = True,
    names: Sequence[str] | None = None,
    data_type: int | None = None,
    biases: Sequence[np.ndarray | None] | None = None,
) -> onnx.ModelProto:
    """Gemm(transB=1) stack, weights (out, in) as nn.Linear stores them; act between layers."""
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    x = "x"
    for i, w in enumerate(weights):
        name = names[i] if names else f"fc{i + 1}.weight"
        prefix = name.rsplit(".", 1)[0]
        inits.append(tensor(name, w, data_type))
        ins = [x, name]
        if bias:
            given = biases[i] if biases is not None and i < len(biases) else None
            b = given if given is not None else torch_default((w.shape[0],), w.shape[1], 100 + i)
            inits.append(tensor(f"{prefix}.bias", b, data_type))
            ins.append(f"{prefix}.bias")
        y = f"/{prefix}/Gemm_output_0"
        nodes.append(helper.make_node("Gemm", ins, [y], name=f"/{prefix}/Gemm", transB=1))
        x = y
        if i < len(weights) - 1 and act:
            a = f"/act{i + 1}/{act}_output_0"
            nodes.append(helper.make_node(act, [x], [a], name=f"/act{i + 1}/{act}"))
            x = a
    elem = data_type or FLOAT
    return model(
        nodes,
        inits,
        [value_info("x", ["N", weights[0].shape[1]], elem)],
        [value_info(x, ["N", weights[-1].shape[0]], elem)],
    )


def clean_mlp(
    sizes: Sequence[int] = (64, 128, 128, 10), seed: int = 0, **kw: object
) -> onnx.ModelProto:
    pairs = itertools.pairwise(sizes)
    ws = [torch_default((o, i), i, seed + k) for k, (i, o) in enumerate(pairs)]
    return mlp(ws, **kw)  # type: ignore[arg-type]


def single_op(
    op: str,
    weight: np.ndarray,
    x_shape: Sequence[int | str],
    slot: int = 1,
    after: Sequence[tuple[str, dict[str, object]]] = (),
    extra_inits: Sequence[TensorProto] = (),
    domain: str = "",
    **attrs: object,
) -> onnx.ModelProto:
    """x -> op(x, W) -> optional chain of single-input ops; W at input ``slot``."""
    ins = ["x", "W"] if slot == 1 else ["W", "x"]
    ins += [t.name for t in extra_inits]
    nodes = [helper.make_node(op, ins, ["y0"], name="op", domain=domain, **attrs)]
    y = "y0"
    for k, (aop, aattrs) in enumerate(after):
        nodes.append(helper.make_node(aop, [y], [f"y{k + 1}"], name=f"after{k}", **aattrs))
        y = f"y{k + 1}"
    extra = [("com.microsoft", 1)] if domain == "com.microsoft" else []
    return model(
        nodes,
        [tensor("W", weight), *extra_inits],
        [value_info("x", list(x_shape))],
        [value_info(y, None)],
        extra_opsets=extra,
    )


def save(m: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(m.SerializeToString())
    return path
