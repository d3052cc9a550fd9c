"""The signal a depth prediction carries: sampled Gaussians, residual sums, decomposed norms."""

from __future__ import annotations

import pytest

from initaudit.graph.model import Node
from initaudit.signal.carried import State, apply_op, divides_by_stat, gaussian, moment, sum_base


def test_a_gaussian_source_is_sampled_at_its_second_moment() -> None:
    st = State()
    a, b = gaussian(st, 4.0, 1.0, hops=3), gaussian(st, 4.0, 1.0)
    assert moment(a.pts) == pytest.approx(4.0, rel=1e-12)
    assert a.src != b.src and a.hops == 3 and b.hops == 0
    assert moment(apply_op("Mul", a.pts, 0.5)) == pytest.approx(1.0, rel=1e-12)


def test_a_residual_sum_is_as_far_from_its_reset_as_its_further_input() -> None:
    """Stream at its reset (q = base = 1) plus a branch that grew x100 since its own reset: the
    sum keeps the branch's x100 relative level, not the stream's 1 (nor their average)."""
    st = State()
    stream, branch = gaussian(st, 1.0, 1.0), gaussian(st, 1.0, 0.01)
    base = sum_base(stream, branch)
    assert (stream.q + branch.q) / base == pytest.approx(100.0)


def _node(op: str, inputs: tuple[str, ...]) -> Node:
    return Node(id=0, name=op, op_type=op, domain="", inputs=inputs, outputs=("y",))


def test_dividing_a_value_by_a_statistic_of_itself_is_a_normalization() -> None:
    st = State()
    x = gaussian(st, 2.0, 1.0)
    rms = apply_op("Pow", x.pts * x.pts, 0.5)
    stat = type(x)(moment(rms), x.base, rms, x.src, stat=True)
    other = gaussian(st, 2.0, 1.0)
    st.sig.update({"x": x, "rms": stat, "other": other})
    assert divides_by_stat(_node("Div", ("x", "rms")), st)
    assert not divides_by_stat(_node("Div", ("x", "other")), st)  # another signal
    assert not divides_by_stat(_node("Add", ("x", "rms")), st)
