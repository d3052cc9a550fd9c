"""Build the :class:`GraphIndex`: every node the model executes, with producer/consumer lookups.

The one place the graph stage reads NodeProto and GraphProto.

Subgraph bodies (If/Loop/Scan) are flattened into the same view, since ONNX lets them read outer
values by name; calls to model-local functions are expanded in place (formal parameters renamed
to the call's actual values), so a weight passed into a function is traced like any other.
Every walk over this view is bounded and keeps a visited set: a hostile file may contain cycles.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from types import MappingProxyType

from initaudit.errors import InputError
from initaudit.graph.model import GraphIndex, Node, NodeAttrs
from initaudit.graph.ops import FOLDS_NORM
from initaudit.graph.validate import (
    Scopes,
    check_body_outputs,
    check_single_assignment,
    check_structure,
    check_unique,
    node_label,
)
from initaudit.load import MAX_FUNCTION_DEPTH
from initaudit.proto import AttributeProto, GraphProto, ModelProto, NodeProto
from initaudit.store import FLOAT_TYPES

_A = AttributeProto
# The attributes the analysis reads (NodeAttrs' fields), with the one type ONNX gives each in
# every op that has it. An attribute stored with another type is left out: readers see None.
_ATTR_TYPES = {
    "activations": _A.STRINGS,
    "allowzero": _A.INT,
    "alpha": _A.FLOAT,
    "approximate": _A.STRING,
    "axes": _A.INTS,
    "axis": _A.INT,
    "block_size": _A.INT,
    "epsilon": _A.FLOAT,
    "equation": _A.STRING,
    "group": _A.INT,
    "hidden_size": _A.INT,
    "kernel_shape": _A.INTS,
    "max": _A.FLOAT,
    "min": _A.FLOAT,
    "perm": _A.INTS,
    "training_mode": _A.INT,
    "transA": _A.INT,
    "transB": _A.INT,
}


_DEFAULT_DOMAINS = ("", "ai.onnx")
# Element types of inputs that carry a signal (0: undeclared, assumed float).
_SIGNAL_TYPES = frozenset({0, *(t for t in FLOAT_TYPES)})


def _attrs(node: NodeProto) -> NodeAttrs:
    """The attributes NodeAttrs names; the rest are not read.

    In the default domain each of them has one type in every op that has it, so another type
    (or the same attribute twice) is an invalid model (``onnx.checker`` refuses it), not a
    value to guess: ``transB`` stored
    as a float would otherwise silently read as its default. Other domains' ops may use the
    names differently, so there an attribute of another type is just not read.
    """
    found: dict[str, object] = {}
    for a in node.attribute:
        want = _ATTR_TYPES.get(a.name)
        if want is None:
            continue
        if a.name in found:  # which of two values would the runtime use? checker refuses it
            raise InputError(
                "invalid-model",
                f"{node_label(node.name, node.op_type)}: attribute {a.name} is given twice",
            )
        if a.type == want:
            found[a.name] = _attr_value(a)
        elif node.domain in _DEFAULT_DOMAINS and not a.ref_attr_name:
            stored, defined = _A.AttributeType.Name(a.type), _A.AttributeType.Name(want)
            raise InputError(
                "invalid-model",
                f"{node_label(node.name, node.op_type)}: attribute {a.name} is stored as "
                f"{stored}; ONNX defines it as {defined}",
            )
    return NodeAttrs(**found) if found else NodeAttrs()  # type: ignore[arg-type]


def _attr_value(a: AttributeProto) -> object:
    t = a.type
    if t == _A.FLOAT:
        return float(a.f)
    if t == _A.INT:
        return int(a.i)
    if t == _A.STRING:
        return a.s.decode("utf-8", "replace")
    if t == _A.INTS:
        return tuple(int(x) for x in a.ints)
    return tuple(s.decode("utf-8", "replace") for s in a.strings)  # STRINGS


@dataclass(frozen=True)
class _Stored:
    """A NodeProto's facts, read from protobuf once: a function body is expanded at every
    call, and reading protobuf fields costs more than building the Node."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: NodeAttrs
    folded_norm: bool = False
    scope: str = ""

    @classmethod
    def of(cls, node: NodeProto) -> _Stored:
        return cls(
            node.name,
            node.op_type,
            node.domain,
            tuple(node.input),
            tuple(node.output),
            _attrs(node),
            _folded(node),
            _scope(node),
        )


def _scope(node: NodeProto) -> str:
    """The framework module a node was exported from, as a dotted path, where the exporter
    says: dynamo's ``pkg.torch.onnx.name_scopes`` (its last module), the legacy exporter's
    node name ``/encoder/layer.0/attention/self/query/MatMul``, tf2onnx's
    ``model/dense_1/MatMul``. Names of dynamo's weights are often lost (``val_12``); the
    scope still tells which layer of which block a weight belongs to."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            modules = [s for s in scopes[:-1] if s]  # the last one is the aten op
            return modules[-1] if modules else ""
    name = node.name
    if "/" in name:
        return ".".join(part for part in name.split("/")[:-1] if part)
    return ""


# What the legacy exporter names a Conv weight it computed by folding an eval BatchNorm in
# (eval_peephole fuseBNIntoConv); an unfolded Conv keeps its parameter's name.
_LEGACY_FOLDED = ("onnx::Conv_", "onnx::ConvTranspose_")


# What tf2onnx leaves when it fuses a Keras BatchNormalization into the convolution before it
# (its fold of Mul/Add constants into Conv, tf2onnx/optimizer): the fused node keeps the
# BatchNormalization's scope (".../bn/batchnorm/mul_1") and the weight is the
# "merged_input" of the fold; an unfused Conv is named ".../conv/convolution" and reads
# ".../ReadVariableOp:0". Seen with tf2onnx 1.17 on Keras 3.15 (tests/graph/roles_test.py).
_TF2ONNX_FOLDED_SCOPE = "/batchnorm/"
_TF2ONNX_FOLDED_WEIGHT = "/merged_input"


def _folded(node: NodeProto) -> bool:
    """Whether an eval BatchNorm was folded into this node at export.

    With a freshly initialized BatchNorm (γ=1, β=0, mean 0, var 1) folding changes the
    weight by 1/√(1+ε) only, so the layer keeps its own init and loses the normalization
    that made its scale irrelevant; in training that BatchNorm still normalizes, which is
    what an init is judged for. Each exporter leaves its own trace: the dynamo exporter
    records the onnxscript rewrite (FuseBatchNormIntoConv/Gemm...) in the node's metadata,
    the legacy one renames the folded weight ``onnx::Conv_N`` (eval_peephole), tf2onnx names
    the fused node in the BatchNormalization's scope and its weight ``merged_input``.
    """
    if node.op_type not in FOLDS_NORM:
        return False
    for prop in node.metadata_props:
        if prop.key == "pkg.onnxscript.rewriter.rule_name" and "FuseBatchNorm" in prop.value:
            return True
    weight = node.input[1] if len(node.input) > 1 else ""
    if weight.startswith(_LEGACY_FOLDED):
        return True
    return _TF2ONNX_FOLDED_SCOPE in node.name.lower() and _TF2ONNX_FOLDED_WEIGHT in weight


@dataclass(frozen=True)
class _Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    body: tuple[_Stored, ...]


def index_graph(model: ModelProto) -> GraphIndex:
    """Every executed node of ``model`` and who produces and reads each value."""
    builder = _Builder(model)
    builder.add_graph(model.graph, "")
    producers: dict[str, Node] = {}
    consumers: dict[str, list[tuple[Node, int]]] = {}
    for node in builder.nodes:
        for out in node.outputs:
            if out:
                producers.setdefault(out, node)
        for i, name in enumerate(node.inputs):
            if name:
                consumers.setdefault(name, []).append((node, i))
    index = GraphIndex(
        nodes=tuple(builder.nodes),
        producers=MappingProxyType(producers),
        consumers=MappingProxyType({k: tuple(v) for k, v in consumers.items()}),
        graph_inputs=frozenset(i.name for i in model.graph.input),
        graph_outputs=frozenset(o.name for o in model.graph.output),
        signal_inputs=frozenset(
            i.name
            for i in model.graph.input
            if i.type.tensor_type.elem_type in _SIGNAL_TYPES or not i.type.HasField("tensor_type")
        ),
    )
    check_structure(index, builder.scopes())
    return index


class _Builder:
    """Flattens subgraphs into one node list and expands model-local function calls."""

    def __init__(self, model: ModelProto) -> None:
        self.nodes: list[Node] = []
        self._function_protos = {(f.domain, f.name): f for f in model.functions}
        self._functions: dict[tuple[str, str], _Function] = {}
        self._defined: set[str] = set()
        self._reads: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = []
        self._outputs: list[tuple[str, str]] = []
        self.expanded = False

    def add_graph(self, graph: GraphProto, graph_label: str) -> None:
        # (graph, label, outputs of the node that owns it: not visible inside its body)
        queue: deque[tuple[GraphProto, str, frozenset[str]]] = deque(
            [(graph, graph_label, frozenset())]
        )
        while queue:
            g, label, owner_outputs = queue.popleft()
            inputs = [i.name for i in g.input]
            inits = [t.name for t in g.initializer] + [
                sp.values.name for sp in g.sparse_initializer
            ]
            check_unique(label, "graph input", inputs)
            check_unique(label, "initializer", inits)
            own = set(inputs) | set(inits)
            self._defined |= own
            self._outputs += ((label, o.name) for o in g.output)
            writes = check_single_assignment(
                label, ((n.name, n.op_type, n.output) for n in g.node), own - {""}
            )
            check_body_outputs(label, [o.name for o in g.output], writes | own, owner_outputs)
            for node in g.node:
                for attr in node.attribute:
                    subs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
                    queue.extend(
                        (
                            sg,
                            sg.name or f"{node.name or node.op_type}/{attr.name}",
                            frozenset(node.output),
                        )
                        for sg in subs
                    )
                stored = _Stored.of(node)
                self._reads.append((node.name, node.op_type, stored.inputs, stored.outputs))
                self._add_node(stored, label, prefix="", rename={}, depth=0)

    def scopes(self) -> Scopes:
        """The names each graph defines and reads, for graph/validate.py."""
        return Scopes(
            defined=frozenset(self._defined),
            reads=tuple(self._reads),
            outputs=tuple(self._outputs),
            expanded=self.expanded,
        )

    def _function(self, key: tuple[str, str]) -> _Function | None:
        if key not in self._functions:
            proto = self._function_protos.get(key)
            if proto is None:
                return None
            body = tuple(_Stored.of(n) for n in proto.node)
            self._functions[key] = _Function(
                proto.name, tuple(proto.input), tuple(proto.output), body
            )
        return self._functions[key]

    def _add_node(
        self, node: _Stored, label: str, prefix: str, rename: dict[str, str], depth: int
    ) -> None:
        def rn(n: str) -> str:
            if not n:
                return n
            return rename.get(n, prefix + n if prefix else n)

        fn = self._function((node.domain, node.op_type)) if depth < MAX_FUNCTION_DEPTH else None
        if fn is not None:
            self.expanded = True
            inner_prefix = f"{prefix}{node.name or fn.name}/"
            inner: dict[str, str] = {}
            for formal, actual in zip(fn.inputs, node.inputs, strict=False):
                inner[formal] = rn(actual)
            for formal, actual in zip(fn.outputs, node.outputs, strict=False):
                inner[formal] = rn(actual)
            for body_node in fn.body:
                self._add_node(body_node, fn.name, inner_prefix, inner, depth + 1)
            return
        nid = len(self.nodes)
        is_constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
        # Constant outputs keep their stored name: the loader registered the tensor under it,
        # and a constant is the same tensor in every call of a function.
        outputs = node.outputs if is_constant else tuple(rn(o) for o in node.outputs)
        self.nodes.append(
            Node(
                id=nid,
                name=(prefix + node.name) if node.name else f"{node.op_type}_{nid}",
                op_type=node.op_type,
                domain=node.domain or "",
                inputs=tuple(rn(i) for i in node.inputs),
                outputs=outputs,
                attrs=node.attrs,
                graph=label,
                folded_norm=node.folded_norm,
                scope=node.scope,
            )
        )
