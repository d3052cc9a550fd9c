"""Measure, in torch, how the gradient's scale changes from a timm model's head to its stem.

IA203's backward verdicts are predictions; the zoo sweep measures activations only. This
checks one model on demand (zoo venv, see benchmarks/zoo_sweep.py): random init, train mode
(BatchNorm on batch statistics, as training's first step), dropout off, a unit gradient at
every output, and for each top-level stage the squared gradient at its output, per element
and summed over one sample (the total, which does not change with resolution)::

    cd benchmarks && /work/venvs/zoo/bin/python -m zoo.gradients maxxvitv2_nano_rw_256 --size 256

(as a module: run as a script, its folder would shadow the standard library's ``select``)

Every module's ``inplace`` flag is cleared first and the gradient is read by a hook on each
stage's output tensor (not a module backward hook): torch refuses a module backward hook
on an output that a later in-place activation modifies (EfficientViT's hardswish_,
Xception's ReLU(inplace=True)), and clearing the flag changes no value.
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
        if isinstance(getattr(mod, "inplace", None), bool):
            mod.inplace = False
    order: list[str] = []  # forward order, so the table runs stem to head
    grads: dict[str, tuple[float, int]] = {}

    def hook(name: str) -> Any:
        def on_forward(mod: Any, inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                order.append(name)

                def record(g: Any) -> None:
                    grads[name] = (g.pow(2).mean().item(), g[0].numel())

                out.register_hook(record)

        return on_forward

    for name, mod in model.named_modules():
        if name and name.count(".") < args.depth:
            mod.register_forward_hook(hook(name))
    x = torch.randn(4, 3, args.size, args.size, requires_grad=True)
    y = model(x)
    y.backward(torch.ones_like(y))
    print("| module (output) | E[g²] per element | sum over one sample |")
    print("|---|---|---|")
    for name in dict.fromkeys(order):
        if name not in grads:
            continue
        per_element, numel = grads[name]
        print(f"| {name} | {per_element:.3g} | {per_element * numel:.3g} |")
    assert x.grad is not None
    print(f"| (input) | {x.grad.pow(2).mean().item():.3g} | {x.grad[0].pow(2).sum().item():.3g} |")


if __name__ == "__main__":
    main()
