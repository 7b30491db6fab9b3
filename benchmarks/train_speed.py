"""How fast each network trains here, in PyTorch's two memory layouts: NCHW (the default) and channels-last (NHWC);
with `--compile`, also channels-last under `torch.compile`.

    .venv/bin/python benchmarks/train_speed.py [--models fastlinknet_ctx,enet] [--size 192] [--batch 16] \
        [--steps 10] [--rounds 3] [--compile]

One step is what the trainer does per batch: forward, cross entropy, backward, AdamW. Every model in each layout is
timed in `--rounds` interleaved rounds of `--steps` steps (footseg.bench.cost.interleaved, footseg's one timing path),
after 3 warm-up steps; the table gives the median step's milliseconds and images per second, with the threads torch
uses (the trainer uses all cores). The trainer runs channels-last on a CPU (footseg/train/trainer.py) because of
this table; run it on a quiet CPU. `--compile` adds a column: the channels-last network under `torch.compile`
(forward and backward, Inductor's default mode; AdamW stays eager), compiled by its first warm-up step (a minute or
more a network here the first time; Inductor's cache shortens later runs). The trainer does not compile, because of
that column (benchmarks/README.md, "Training speed: channels-last").

A second table checks that the layout changes only the order of the sums: one training step's output and gradients
(cross entropy, batch 2 at 96x96, dropout off) in each layout against the same step in float64, as relative errors
(L2 norms).
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch
import torch.nn.functional as F

from footseg.bench.cost import Sampler, interleaved
from footseg.models.registry import create_model, list_models
from footseg.runtime.timing import time_runs

LAYOUTS = {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}


def _step_sampler(name: str, layout: torch.memory_format, size: int, batch: int, compiled: bool = False) -> Sampler:
    torch.manual_seed(0)
    model = create_model(name, num_classes=2).to(memory_format=layout).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if compiled else model
    images = torch.randn(batch, 3, size, size).contiguous(memory_format=layout)
    masks = torch.randint(0, 2, (batch, size, size))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(forward(images), masks).backward()
        optimizer.step()

    return lambda runs, warmup, min_time: time_runs(step, runs=runs, warmup=warmup, min_time=min_time)


def _output_and_gradients(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(images)
    F.cross_entropy(logits.double(), masks).backward()
    grads = torch.cat([p.grad.double().flatten() for p in model.parameters() if p.grad is not None])
    return logits.double(), grads


def _relative(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value - reference).norm() / reference.norm()).item()


def _layout_errors(name: str) -> dict[str, tuple[float, float]]:
    """Relative L2 error of one training step's output and gradients against float64, per layout."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=2).train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0  # the layouts draw their dropout masks differently
    images, masks = torch.randn(2, 3, 96, 96), torch.randint(0, 2, (2, 96, 96))
    ref_out, ref_grad = _output_and_gradients(copy.deepcopy(model).double(), images.double(), masks)
    errors = {}
    for layout, fmt in LAYOUTS.items():
        net = copy.deepcopy(model).to(memory_format=fmt)
        out, grad = _output_and_gradients(net, images.contiguous(memory_format=fmt), masks)
        errors[layout] = _relative(out, ref_out), _relative(grad, ref_grad)
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(list_models()), help="comma-separated (default: all five "
                        "networks and fastlinknet_ctx)")
    parser.add_argument("--size", type=int, default=192, help="square input side (the default recipe's crop)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time channels-last under torch.compile")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    variants = [*LAYOUTS, *(["compiled"] if args.compile else [])]
    keys = [(m, v) for m in models for v in variants]
    samplers = [_step_sampler(m, LAYOUTS.get(v, torch.channels_last), args.size, args.batch, v == "compiled")
                for m, v in keys]
    samples = interleaved(samplers, rounds=args.rounds, runs=args.rounds * args.steps, warmup=3, min_time=0.0)
    times = dict(zip(keys, samples, strict=True))
    print(f"training step, batch {args.batch} at {args.size}x{args.size}, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} interleaved rounds of {args.steps} steps")
    compiled_head = f"{'compiled ms':>12}{'img/s':>8}{'vs NHWC':>9}" if args.compile else ""
    print(f"{'model':<18}{'NCHW ms':>10}{'img/s':>8}{'NHWC ms':>10}{'img/s':>8}{'speed-up':>10}{compiled_head}")
    for m in models:
        nchw, nhwc = (statistics.median(times[(m, lay)]) for lay in LAYOUTS)
        row = (f"{m:<18}{nchw:>10.0f}{args.batch * 1000 / nchw:>8.1f}{nhwc:>10.0f}{args.batch * 1000 / nhwc:>8.1f}"
               f"{nchw / nhwc:>9.2f}x")
        if args.compile:
            comp = statistics.median(times[(m, "compiled")])
            row += f"{comp:>12.0f}{args.batch * 1000 / comp:>8.1f}{nhwc / comp:>8.2f}x"
        print(row)
    print("\none training step against float64 (relative error)")
    print(f"{'model':<18}{'NCHW out':>10}{'grads':>9}{'NHWC out':>10}{'grads':>9}")
    for m in models:
        errors = _layout_errors(m)
        (o1, g1), (o2, g2) = errors["nchw"], errors["channels-last"]
        print(f"{m:<18}{o1:>10.1e}{g1:>9.1e}{o2:>10.1e}{g2:>9.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
