"""The ONNX op vocabulary, once: which op types the analysis treats alike, and why.

Every stage that asks "is this a normalization?", "does this carry the signal unchanged?" or
"is this a linear layer?" reads the answer here, so the tracing of weights, the activation walk
and the depth model cannot drift apart. Sets are named by what the analysis does with an op,
not by what the op is; where two stages need different answers (a walk that stops at a
reduction vs a propagation that models one), both sets stand here side by side.

To teach initaudit a new op, add it to the sets below that describe it; if it holds a weight,
give it a fan layout in ``graph/layout.py``; if it changes the signal's scale in a way none of
these sets describes, give it a handler in ``signal/forward.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from initaudit.graph.model import Kind

# Ops that compute a linear map of their activation input with a weight operand.
LINEAR_OPS = frozenset(
    {
        "Gemm",
        "MatMul",
        "Conv",
        "ConvTranspose",
        "Einsum",
        "Attention",
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulNBits",
        "QGemm",
        "DynamicQuantizeMatMul",
    }
)
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
# Convolutions: fan_out mode (torchvision, timm) is a scheme for them only.
CONV_OPS = frozenset({"Conv", "ConvTranspose", "QLinearConv", "ConvInteger"})
# Ops an exporter folds an eval BatchNorm into (torch's eval_peephole, onnxscript's rewriter).
FOLDS_NORM = frozenset({"Conv", "ConvTranspose", "Gemm"})
# An embedding table's lookup.
GATHER = "Gather"

# Normalizations: their output's scale is set by their affine parameters, not by their input.
NORM_OPS = frozenset(
    {
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "SimplifiedLayerNormalization",
        "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "LpNormalization",
        "MeanVarianceNormalization",
    }
)

# Between a stored tensor and the op that gives it its meaning, exporters put these (dedup
# Identity, fp16 Cast islands, the tied lm_head's Transpose, QDQ): tracing goes through them.
TRACE_THROUGH = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Dropout",
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "DequantizeLinear",
        "QuantizeLinear",
    }
)
# Ops that only move elements: looking back from a value to what computed it skips them.
LAYOUT_OPS = frozenset(
    {"Reshape", "Transpose", "Identity", "Cast", "Squeeze", "Unsqueeze", "Flatten"}
)
# Weight slicing a dynamo export reassembles with a Concat (LSTM/GRU gate reorder).
SLICE_OPS = frozenset({"Slice", "Split"})

# Ops whose output is constant when every input is: what exporters put between a stored
# tensor and its use, and the shape arithmetic around it.
CONST_FOLDABLE = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "DequantizeLinear",
        "QuantizeLinear",
        "Concat",
        "Shape",
        "Gather",
        "Slice",
        "Expand",
        "Mul",
        "Div",
        "Add",
        "Sub",
        "Neg",
        "Sqrt",
        "Reciprocal",
        "Pow",
        "Exp",
        "Log",
        "ConstantOfShape",
        "Range",
        "Tile",
        "Split",
    }
)

# Ops that carry the signal through unchanged in the sense that matters for an init's gain
# (the activation walk goes through them; the depth model passes their input's scale on).
PASS_OPS = frozenset(
    {
        "Reshape",
        "Transpose",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Dropout",
        "Cast",
        "CastLike",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Pad",
        "Slice",
        "Split",
        "Concat",
        "Resize",
        "Upsample",
        "DepthToSpace",
        "SpaceToDepth",
        "Expand",
        "Tile",
        "Gather",
        "QuantizeLinear",
        "DequantizeLinear",
    }
)

ADDITIVE = frozenset({"Add", "Sub"})  # a bias, a norm shift, or a residual join
SCALING = frozenset({"Mul", "Div"})  # a norm scale, a layer scale, a gate, a normalization
BINARY_ARITHMETIC = ADDITIVE | SCALING | {"Pow"}

# Activation ops the walk recognizes as one node, and the kind (the contract's keyword) each
# one is; LeakyRelu, Elu, Celu, Gelu and Clip have parameters and are read on their own.
ACTIVATION_KINDS: Mapping[str, Kind] = {
    "Relu": Kind.RELU,
    "PRelu": Kind.PRELU,
    "Selu": Kind.SELU,
    "Tanh": Kind.TANH,
    "Sigmoid": Kind.SIGMOID,
    "HardSigmoid": Kind.HARDSIGMOID,
    "HardSwish": Kind.HARDSWISH,
    "Softplus": Kind.SOFTPLUS,
    "Softsign": Kind.SOFTSIGN,
    "Mish": Kind.MISH,
    "ThresholdedRelu": Kind.THRESHOLDED_RELU,
    "Sin": Kind.SIN,
    "Cos": Kind.SIN,
    "Softmax": Kind.SOFTMAX,
    "LogSoftmax": Kind.SOFTMAX,
    "Abs": Kind.ABS,
    "FastGelu": Kind.GELU,
    "BiasGelu": Kind.GELU,
    "QuickGelu": Kind.GELU,
}
# The activation names LSTM/GRU/RNN take in their ``activations`` attribute.
RNN_ACTIVATIONS: Mapping[str, Kind] = {
    "Relu": Kind.RELU,
    "Tanh": Kind.TANH,
    "Sigmoid": Kind.SIGMOID,
    "LeakyRelu": Kind.LEAKY_RELU,
    "ThresholdedRelu": Kind.THRESHOLDED_RELU,
    "HardSigmoid": Kind.HARDSIGMOID,
    "Elu": Kind.ELU,
    "Softsign": Kind.SOFTSIGN,
    "Softplus": Kind.SOFTPLUS,
}
# Activations with a slope parameter: (kind, ONNX default of ``alpha``).
ALPHA_ACTIVATIONS: Mapping[str, tuple[Kind, float]] = {
    "LeakyRelu": (Kind.LEAKY_RELU, 0.01),
    "Elu": (Kind.ELU, 1.0),
    "Celu": (Kind.CELU, 1.0),
}

# Elementwise ops a decomposed activation (GELU via Erf, SiLU as x*Sigmoid(x), Mish...) is
# built from, and the nonlinear ones among them that make the gate f in x * f(x).
PATTERN_OPS = frozenset(
    {
        "Mul",
        "Div",
        "Add",
        "Sub",
        "Pow",
        "Erf",
        "Tanh",
        "Sigmoid",
        "Softplus",
        "HardSigmoid",
        "Clip",
        "Relu",
        "Neg",
        "Exp",
        "Log",
    }
)
GATE_OPS = frozenset({"Erf", "Tanh", "Sigmoid", "Softplus", "HardSigmoid", "Clip", "Relu"})
# A decomposed LayerNorm/RMSNorm divides by a statistic of its input: these reductions, reached
# back through NORM_FACTOR_OPS (the +eps, sqrt, reciprocal around them; the clamp and expand of
# F.normalize, x / max(‖x‖, eps).expand_as(x), which the dynamo exporter writes as ReduceL2,
# Clip, Expand, Div).
NORM_STATISTICS = frozenset({"ReduceMean", "ReduceL2", "ReduceSumSquare", "ReduceSum"})
NORM_FACTOR_OPS = frozenset(
    {
        "Add",
        "Cast",
        "Div",
        "Pow",
        "Mul",
        "Identity",
        "Sqrt",
        "Reciprocal",
        "Rsqrt",
        "Clip",
        "Max",
        "Expand",
    }
)

# Activation ops the depth model evaluates on its Gaussian grid, by the function it uses.
PROPAGATED_ACTIVATIONS: Mapping[str, Kind] = {
    "Relu": Kind.RELU,
    "Tanh": Kind.TANH,
    "Sigmoid": Kind.SIGMOID,
    "Gelu": Kind.GELU,
    "Softplus": Kind.SOFTPLUS,
    "Mish": Kind.MISH,
    "HardSwish": Kind.HARDSWISH,
    "HardSigmoid": Kind.HARDSIGMOID,
    "Selu": Kind.SELU,
    "Elu": Kind.ELU,
    "Celu": Kind.CELU,
    "LeakyRelu": Kind.LEAKY_RELU,
    "Softsign": Kind.SOFTSIGN,
    "Sin": Kind.SIN,
    "Abs": Kind.ABS,
}
# Elementwise math the depth model evaluates exactly (its numpy function lives with the model).
ELEMENTWISE_MATH = frozenset({"Erf", "Sqrt", "Reciprocal", "Neg", "Exp", "Log", "Cos"})
# Reductions the depth model takes as the expectation of their input.
REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceL2", "ReduceSumSquare", "ReduceMax"})
# Reductions whose value grows with the number of values reduced (the depth model takes them
# per value and marks them assumed).
SIZED_REDUCTIONS = frozenset({"ReduceSum", "ReduceL2", "ReduceSumSquare"})
# Gates whose output lies in (0, 1): what a squeeze-excite branch multiplies its input by.
SQUASHING_GATES = frozenset({"Sigmoid", "HardSigmoid"})
# Pooling: an average keeps the mean and divides the rest by the positions pooled; a max of
# several values raises the second moment (the order statistic of the window).
AVERAGE_POOLS = frozenset({"AveragePool", "GlobalAveragePool"})
MAX_POOLS = frozenset({"MaxPool", "GlobalMaxPool"})
SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax"})
# Outputs that describe a tensor rather than carry its signal: shapes, indices, and the
# booleans of comparisons (padding masks built from token ids: Less, Not, Equal...).
NO_SIGNAL = frozenset(
    {
        "Less",
        "LessOrEqual",
        "Greater",
        "GreaterOrEqual",
        "Equal",
        "Not",
        "And",
        "Or",
        "Xor",
        "IsNaN",
        "IsInf",
        "Shape",
        "Size",
        "NonZero",
        "ArgMax",
        "ArgMin",
        "TopK",
        "Range",
        "ConstantOfShape",
        "EyeLike",
        "RandomNormalLike",
        "RandomUniformLike",
    }
)
# Passed through by the depth model: the walk's PASS_OPS but Concat (it averages its inputs),
# and a dynamic quantizer, whose first output is the signal.
SIGNAL_PASS = (PASS_OPS - {"Concat"}) | {"DynamicQuantizeLinear"}

# Quantization: the ops whose scale and zero-point operands are part of a quantized weight,
# and, for ops that take integer weights with their own parameters, (op, weight slot) ->
# (scale slot, zero-point slot, per-channel axis).
QDQ_OPS = frozenset({"DequantizeLinear", "QuantizeLinear"})
QLINEAR_OPS = frozenset({"QLinearConv", "QLinearMatMul"})
QLINEAR_PARAM_SLOTS = frozenset({1, 2, 4, 5, 6, 7})
QLINEAR_WEIGHTS: Mapping[tuple[str, int], tuple[int, int, int]] = {
    ("QLinearConv", 3): (4, 5, 0),
    ("QLinearMatMul", 3): (4, 5, -1),
}
INTEGER_OPS = frozenset({"MatMulInteger", "ConvInteger"})
