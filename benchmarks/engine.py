"""Engine throughput: steps/s for a toy and a big MLP, telemetry on and off, against the
float32 GEMM rate of the same step's matrix products and (when installed) PyTorch.

    python benchmarks/engine.py [--seconds 1.0] [--rounds 5]

Single thread everywhere. Each round measures every contender once, one after the other, so
that machine noise hits all of them alike; the ratios are medians over rounds.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from nnsim.config import Config  # noqa: E402
from nnsim.engine import Simulation  # noqa: E402
from nnsim.engine.memory import tune_allocator  # noqa: E402

SETUPS = {
    # 2 → 3×32 → 2, batch 64
    "toy": {"data": {"name": "circle", "samples": 2000},
            "model": {"hidden": [32, 32, 32], "activation": "tanh", "dtype": "float32"},
            "optimizer": {"name": "momentum", "lr": 0.05},
            "train": {"batch_size": 64, "eval_every": 0}},
    # 64 → 8×256 → 10, batch 256, float32
    "big": {"data": {"name": "teacher", "dim": 64, "classes": 10, "samples": 4096,
                     "validation": 0.0},
            "model": {"hidden": [256] * 8, "activation": "relu", "initializer": "he_normal",
                      "dtype": "float32"},
            "optimizer": {"name": "momentum", "lr": 0.01},
            "train": {"batch_size": 256, "eval_every": 0}},
}


def rate(step, seconds: float) -> float:
    """Steps per second of `step()` over about `seconds`."""
    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            step()
        n += 10
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def gemm_step(sim: Simulation):
    """The matrix products of one training step and nothing else, into preallocated outputs."""
    net = sim.net
    b = sim.config.train.batch_size
    dt = net.dtype
    rng = np.random.default_rng(0)
    products = []
    for i, layer in enumerate(net.dense):
        x = rng.standard_normal((b, layer.fan_in)).astype(dt)
        w = rng.standard_normal((layer.fan_in, layer.fan_out)).astype(dt)
        g = rng.standard_normal((b, layer.fan_out)).astype(dt)
        products.append((x, w, np.empty((b, layer.fan_out), dt)))            # forward
        products.append((x.T, g, np.empty((layer.fan_in, layer.fan_out), dt)))  # ∂L/∂W
        if i > 0:
            products.append((g, w.T, np.empty((b, layer.fan_in), dt)))         # ∂L/∂x
    flops = sum(2 * a.shape[0] * a.shape[1] * bb.shape[1] for a, bb, _ in products)

    def step():
        for a, bb, out in products:
            np.matmul(a, bb, out=out)

    return step, flops


def torch_step(setup: dict, sim: Simulation):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[setup["model"]["activation"]]
    widths = sim.net.widths
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(act())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=setup["optimizer"]["lr"], momentum=0.9)
    x = torch.from_numpy(sim.data.train_x.astype(np.float32))
    y = torch.from_numpy(sim.data.train_y)
    bsz = sim.config.train.batch_size
    gen = torch.Generator().manual_seed(0)
    state = {"perm": torch.randperm(len(x), generator=gen), "pos": 0}

    def step():
        if state["pos"] + bsz > len(x):
            state["perm"], state["pos"] = torch.randperm(len(x), generator=gen), 0
        idx = state["perm"][state["pos"]:state["pos"] + bsz]
        state["pos"] += bsz
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()

    return step, torch.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (the nnsim command tunes it)")
    args = parser.parse_args()
    tuned = False if args.default_allocator else tune_allocator()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    print(f"numpy {np.__version__}, single thread, {args.rounds} rounds of "
          f"{args.seconds:g} s per measurement, allocator "
          f"{'tuned as the nnsim command does' if tuned else 'as is'}")

    for name, setup in SETUPS.items():
        config = Config.from_dict(setup)
        contenders = {
            "telemetry": Simulation(config).step,
            "no telemetry": Simulation(config, telemetry=False).step,
        }
        gemm, flops = gemm_step(Simulation(config, telemetry=False))
        contenders["GEMM only"] = gemm
        if have_torch:
            contenders["pytorch"], torch_version = torch_step(setup, Simulation(config))
        rounds: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for key, step in contenders.items():
                rounds[key].append(rate(step, args.seconds))
        med = {k: statistics.median(v) for k, v in rounds.items()}
        print(f"\n{name}: widths {Simulation(config, telemetry=False).net.widths}, batch "
              f"{config.train.batch_size}, {config.model.dtype}, "
              f"{flops / 1e6:.2f} MFLOP of GEMM per step")
        for key, value in med.items():
            extra = ""
            if key == "GEMM only":
                extra = f"  ({value * flops / 1e9:.1f} GFLOP/s)"
            if key == "pytorch":
                extra = f"  (torch {torch_version})"
            print(f"  {key:<13} {value:>10,.0f} steps/s{extra}")

        def ratio(a: str, b: str) -> float:
            return statistics.median(x / y for x, y in zip(rounds[a], rounds[b]))

        print(f"  no telemetry / GEMM only: {ratio('no telemetry', 'GEMM only'):.2f}")
        print(f"  telemetry / no telemetry: {ratio('telemetry', 'no telemetry'):.2f}")
        if have_torch:
            print(f"  telemetry / pytorch:      {ratio('telemetry', 'pytorch'):.2f}")
            print(f"  no telemetry / pytorch:   {ratio('no telemetry', 'pytorch'):.2f}")


if __name__ == "__main__":
    main()
