"""Measure, in torch, how the gradient's scale changes from a timm model's head to its stem.

IA203's backward verdicts are predictions; the zoo sweep measures activations only. This
checks one model on demand (zoo venv, see benchmarks/zoo_sweep.py): random init, train mode
(BatchNorm on batch statistics, as training's first step), dropout off, a unit gradient at
every output, and for each top-level stage the squared gradient at its output, per element
and summed over one sample (the total, which does not change with resolution)::

    cd benchmarks && /work/venvs/zoo/bin/python -m zoo.gradients maxxvitv2_nano_rw_256 --size 256

(as a module: run as a script, its folder would shadow the standard library's ``select``)

Models whose blocks modify a hooked output in place (hardswish_, ReLU(inplace=True) on a
module output) cannot be hooked this way and fail with torch's view+inplace error.
"""

from __future__ import annotations

import argparse
from typing import Any


def main(argv: list[str] | None = None) -> None:
    import timm
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--size", type=int, default=224, help="input height and width")
    p.add_argument("--depth", type=int, default=1, help="module name depth to hook (dots)")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False)
    model.train()
    for mod in model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    grads: dict[str, tuple[float, int]] = {}

    def hook(name: str) -> Any:
        def record(mod: Any, grad_in: Any, grad_out: Any) -> None:
            g = grad_out[0]
            if g is not None:
                grads[name] = (g.pow(2).mean().item(), g[0].numel())

        return record

    for name, mod in model.named_modules():
        if name and name.count(".") < args.depth:
            mod.register_full_backward_hook(hook(name))
    x = torch.randn(4, 3, args.size, args.size, requires_grad=True)
    y = model(x)
    y.backward(torch.ones_like(y))
    print("| module (output) | E[g²] per element | sum over one sample |")
    print("|---|---|---|")
    for name, (per_element, numel) in grads.items():
        print(f"| {name} | {per_element:.3g} | {per_element * numel:.3g} |")
    assert x.grad is not None
    print(f"| (input) | {x.grad.pow(2).mean().item():.3g} | {x.grad[0].pow(2).sum().item():.3g} |")


if __name__ == "__main__":
    main()
