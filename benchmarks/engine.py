"""Engine throughput in steps per CPU-second, against the GEMM-only bound, PyTorch and NumPy.

    python benchmarks/engine.py [--rounds 15] [--seconds 0.2] [--only toy,big,...]

Sections (`--only` takes any of them, comma-separated; all by default):

- toy, big-tanh, big-relu, tui: nnsim with telemetry on every step and without telemetry,
  a plain NumPy MLP, PyTorch eager (when installed), and the GEMM-only bound: the step's
  matrix products and nothing else, through NumPy's BLAS and, with torch, through torch's.
- every: the headless run `nnsim run --every 100` against `nnsim run --every 100
  --no-telemetry`, in process: `Simulation.steps(n, every=100)` with the command's per-step
  work (each record into a History, every 100th written as JSON Lines to memory).
- scaling: nnsim with telemetry against PyTorch at widths 32–1024 (depth 4, batch 128) and
  depths 2–16 (width 256, batch 128).
- records: the cost of writing one record (µs and bytes), JSON Lines and CSV.

Everything runs on one thread. Each measurement runs a contender for about `--seconds` of
CPU time (`time.process_time`, so that time the machine gives to other processes does not
count); a round measures every contender once, in an order that rotates from round to
round, and each ratio is the median over rounds of that round's ratio, with its range
(min–max). On a shared machine the ratios are what to read; the load is printed before and
after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from nnsim.config import Config  # noqa: E402
from nnsim.engine import Simulation  # noqa: E402
from nnsim.engine.history import History  # noqa: E402
from nnsim.engine.memory import tune_allocator  # noqa: E402
from nnsim.engine.writers import CsvWriter, JsonlWriter  # noqa: E402

SECTIONS = ("toy", "big-tanh", "big-relu", "tui", "every", "scaling", "records")

_BIG: dict[str, Any] = {"data": {"name": "teacher", "dim": 64, "classes": 10, "samples": 4096,
                 "validation": 0.0},
        "model": {"hidden": [256] * 8, "activation": "tanh", "initializer": "xavier_normal",
                  "dtype": "float32"},
        "optimizer": {"name": "momentum", "lr": 0.01},
        "train": {"batch_size": 256, "eval_every": 0}}

SETUPS: dict[str, dict] = {
    # 2 → 3×32 → 2, batch 64
    "toy": {"data": {"name": "circle", "samples": 2000},
            "model": {"hidden": [32, 32, 32], "activation": "tanh", "dtype": "float32"},
            "optimizer": {"name": "momentum", "lr": 0.05},
            "train": {"batch_size": 64, "eval_every": 0}},
    # 64 → 8×256 → 10, batch 256, float32
    "big-tanh": _BIG,
    "big-relu": {**_BIG, "model": {**_BIG["model"], "activation": "relu",
                                   "initializer": "he_normal"}},
    # the network the TUI opens with (nnsim's default config), evaluation off
    "tui": {"train": {"eval_every": 0}},
}


def scaling_setup(width: int, depth: int) -> dict:
    return {"data": {"name": "teacher", "dim": 64, "classes": 10, "samples": 4096,
                     "validation": 0.0},
            "model": {"hidden": [width] * depth, "activation": "tanh", "dtype": "float32"},
            "optimizer": {"name": "momentum", "lr": 0.01},
            "train": {"batch_size": 128, "eval_every": 0}}


# ---------------------------------------------------------------- measuring

def rate(step: Callable[[], object], seconds: float, per_call: int = 1) -> float:
    """Steps per CPU-second of `step()` (each call `per_call` steps) over about `seconds`."""
    step()
    n, start = 0, time.process_time()
    while True:
        step()
        n += per_call
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return n / elapsed


def interleave(contenders: dict[str, tuple[Callable, int]], rounds: int, seconds: float
               ) -> dict[str, list[float]]:
    """Steps per CPU-second of every contender, round by round, order rotating."""
    names = list(contenders)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            step, per_call = contenders[k]
            out[k].append(rate(step, seconds, per_call))
    return out


def ratio(rounds: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    """Median, min and max over rounds of a's rate over b's."""
    r = [x / y for x, y in zip(rounds[a], rounds[b])]
    return statistics.median(r), min(r), max(r)


def fmt_ratio(rounds, a: str, b: str) -> str:
    med, lo, hi = ratio(rounds, a, b)
    return f"{med:5.2f} ({lo:.2f}–{hi:.2f})"


# ---------------------------------------------------------------- contenders

def gemm_products(sim: Simulation) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The matrix products of one training step of `sim`'s network (forward, ∂L/∂W and
    ∂L/∂x but the first layer's), as (a, b, out) with preallocated outputs."""
    net = sim.net
    b = sim.config.train.batch_size
    dt = net.dtype
    rng = np.random.default_rng(0)
    products = []
    for i, layer in enumerate(net.dense):
        x = rng.standard_normal((b, layer.fan_in)).astype(dt)
        w = rng.standard_normal((layer.fan_in, layer.fan_out)).astype(dt)
        g = rng.standard_normal((b, layer.fan_out)).astype(dt)
        products.append((x, w, np.empty((b, layer.fan_out), dt)))              # forward
        products.append((x.T, g, np.empty((layer.fan_in, layer.fan_out), dt)))  # ∂L/∂W
        if i > 0:
            products.append((g, w.T, np.empty((b, layer.fan_in), dt)))           # ∂L/∂x
    return products


def gemm_numpy(sim: Simulation) -> tuple[Callable, float]:
    products = gemm_products(sim)
    flops = sum(2 * a.shape[0] * a.shape[1] * bb.shape[1] for a, bb, _ in products)

    def step():
        for a, bb, out in products:
            np.matmul(a, bb, out=out)

    return step, flops


def gemm_torch(sim: Simulation) -> Callable:
    import torch

    products = [(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(
        np.ascontiguousarray(b)), torch.from_numpy(out)) for a, b, out in gemm_products(sim)]

    def step():
        for a, b, out in products:
            torch.mm(a, b, out=out)

    return step


def torch_step(setup: dict, sim: Simulation) -> Callable:
    """The same network, data and momentum SGD in PyTorch eager mode."""
    import torch

    torch.manual_seed(0)
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[sim.config.model.activation.name]
    widths = sim.net.widths
    layers: list = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(act())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=sim.lr, momentum=0.9)
    x = torch.from_numpy(sim.data.train_x.astype(np.float32))
    y = torch.from_numpy(sim.data.train_y.astype(np.int64))
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

    return step


def numpy_step(sim: Simulation) -> Callable:
    """A plain NumPy MLP as one would write it by hand: tanh or ReLU, softmax
    cross-entropy, momentum SGD; arrays allocated as NumPy does, no statistics."""
    rng = np.random.default_rng(0)
    dt = sim.net.dtype
    relu = sim.config.model.activation.name == "relu"
    widths = sim.net.widths
    Ws = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dt)
          for a, b in zip(widths[:-1], widths[1:])]
    bs = [np.zeros(b, dt) for b in widths[1:]]
    vW = [np.zeros_like(w) for w in Ws]
    vb = [np.zeros_like(b) for b in bs]
    x_all, y_all = sim.data.train_x.astype(dt), sim.data.train_y
    bsz, lr = sim.config.train.batch_size, sim.lr
    state = {"perm": rng.permutation(len(x_all)), "pos": 0}

    def step():
        if state["pos"] + bsz > len(x_all):
            state["perm"], state["pos"] = rng.permutation(len(x_all)), 0
        idx = state["perm"][state["pos"]:state["pos"] + bsz]
        state["pos"] += bsz
        h, y = x_all[idx], y_all[idx]
        hs = [h]
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = h @ W + b
            h = np.maximum(h, 0) if relu else np.tanh(h)
            hs.append(h)
        z = h @ Ws[-1] + bs[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(bsz), y] -= 1
        g = p / bsz
        for i in range(len(Ws) - 1, -1, -1):
            gW, gb = hs[i].T @ g, g.sum(axis=0)
            if i:
                g = g @ Ws[i].T
                g *= (hs[i] > 0) if relu else (1 - hs[i] * hs[i])
            vW[i] *= 0.9
            vW[i] += gW
            vb[i] *= 0.9
            vb[i] += gb
            Ws[i] -= lr * vW[i]
            bs[i] -= lr * vb[i]

    return step


def headless(config: Config, telemetry: bool, every: int = 100) -> Callable:
    """`every` steps of `nnsim run --every K [--no-telemetry]`, in process: the records go
    into a History as the command's do, every K-th is written as JSON Lines to memory. The
    steps come from one `Simulation.steps` call, as the command's do (its last step is
    measured; here it is never reached)."""
    sim = Simulation(config, telemetry=telemetry)
    history = History(timeline=False)
    out = io.StringIO()
    writer = JsonlWriter(out)
    steps = sim.steps(2**40, every=every)

    def chunk():
        for record in itertools.islice(steps, every):
            history.append(record)
            if record.step % every == 0:
                writer.write(record)
        out.seek(0)
        out.truncate()

    return chunk


# ---------------------------------------------------------------- sections

def have_torch() -> bool:
    try:
        import torch

        torch.set_num_threads(1)
        return True
    except ImportError:
        return False


def versus(name: str, setup: dict, args, torch_ok: bool) -> None:
    config = Config.from_dict(setup)
    sim = Simulation(config, telemetry=False)
    gemm, flops = gemm_numpy(sim)
    contenders = {
        "telemetry": (Simulation(config).step, 1),
        "none": (Simulation(config, telemetry=False).step, 1),
        "numpy": (numpy_step(sim), 1),
        "gemm-openblas": (gemm, 1),
    }
    if torch_ok:
        contenders["pytorch"] = (torch_step(setup, sim), 1)
        contenders["gemm-mkl"] = (gemm_torch(sim), 1)
    rounds = interleave(contenders, args.rounds, args.seconds)
    med = {k: statistics.median(v) for k, v in rounds.items()}
    m = config.model
    print(f"\n{name}: widths {sim.net.widths}, {m.activation.name}, batch "
          f"{config.train.batch_size}, {m.dtype}, {config.optimizer.name}; "
          f"{flops / 1e6:.2f} MFLOP of GEMM per step")
    print("  steps per CPU-second (median): " + ", ".join(
        f"{k} {v:,.1f}" for k, v in med.items()))
    print(f"  GEMM-only through OpenBLAS: {med['gemm-openblas'] * flops / 1e9:.1f} GFLOP/s"
          + (f", through MKL: {med['gemm-mkl'] * flops / 1e9:.1f} GFLOP/s" if torch_ok
             else ""))
    print("  ratio, median of rounds (min–max):")
    pairs = [("telemetry", "none"), ("none", "gemm-openblas"), ("telemetry", "numpy"),
             ("none", "numpy")]
    if torch_ok:
        pairs += [("telemetry", "pytorch"), ("none", "pytorch"), ("pytorch", "gemm-mkl")]
    for a, b in pairs:
        print(f"    {a + ' / ' + b:<28} {fmt_ratio(rounds, a, b)}")


def every_section(args) -> None:
    config = Config.from_dict(SETUPS["toy"])
    contenders = {"--every 100": (headless(config, True), 100),
                  "--every 100 --no-telemetry": (headless(config, False), 100)}
    # a measured step every 100: longer measurements than the others (5 × --seconds)
    rounds = interleave(contenders, args.rounds, 5 * args.seconds)
    med = {k: statistics.median(v) for k, v in rounds.items()}
    print("\nevery (toy network, in process: one Simulation.steps(n, every=100), each record "
          "into a History, every 100th written as JSON Lines):")
    for k, v in med.items():
        print(f"  nnsim run {k:<28} {v:>9,.0f} steps per CPU-second")
    print(f"  ratio --every 100 / --no-telemetry: "
          f"{fmt_ratio(rounds, '--every 100', '--every 100 --no-telemetry')}")


def scaling_section(args, torch_ok: bool) -> None:
    if not torch_ok:
        print("\nscaling: skipped (PyTorch is not installed)")
        return
    print("\nscaling: nnsim with telemetry on every step / PyTorch eager, tanh, batch 128, "
          "median of rounds (min–max)")
    points = [(w, 4) for w in (32, 64, 128, 256, 512, 1024)] + \
             [(256, d) for d in (2, 4, 8, 16)]
    print(f"  {'width':>5} {'depth':>5} {'nnsim/s':>9} {'torch/s':>9}  ratio")
    for width, depth in points:
        setup = scaling_setup(width, depth)
        config = Config.from_dict(setup)
        sim = Simulation(config)
        contenders = {"nnsim": (sim.step, 1),
                      "pytorch": (torch_step(setup, Simulation(config, telemetry=False)), 1)}
        rounds = interleave(contenders, args.rounds, args.seconds)
        print(f"  {width:>5} {depth:>5} {statistics.median(rounds['nnsim']):>9,.1f} "
              f"{statistics.median(rounds['pytorch']):>9,.1f}  "
              f"{fmt_ratio(rounds, 'nnsim', 'pytorch')}")


def records_section(args) -> None:
    print("\nrecords: cost of writing one record (median of rounds)")
    for name in ("toy", "tui"):
        sim = Simulation(Config.from_dict(SETUPS[name]))
        records = sim.run(200)
        for label, make in (("json.dumps(to_dict())", None), ("jsonl", JsonlWriter),
                            ("csv", CsvWriter)):
            out = io.StringIO()
            writer = None if make is None else make(out)
            if writer is not None:
                writer.write(records[0])  # the header

            def write(records=records, out=out, writer=writer):
                for r in records:
                    if writer is None:
                        out.write(json.dumps(r.to_dict(), separators=(",", ":")) + "\n")
                    else:
                        writer.write(r)
            times = []
            for _ in range(max(3, args.rounds // 3)):
                out.seek(0)
                out.truncate()
                start = time.process_time()
                write()
                times.append((time.process_time() - start) / len(records) * 1e6)
            size = len(out.getvalue()) / len(records)
            print(f"  {name:<4} {label:<22} {statistics.median(times):7.1f} µs  "
                  f"{size:7.0f} bytes per record")


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    parts = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
             f"{i.get('num_threads')} thread{'s' if i.get('num_threads') != 1 else ''}) "
             f"from {os.path.basename(str(i.get('filepath')))}"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return "BLAS: " + ("; ".join(parts) or "none found")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.2,
                        help="CPU seconds per measurement (default 0.2)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (>= 15 "
                                                               "for reported numbers)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (the nnsim command tunes it)")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    aliases = {"big": ["big-tanh", "big-relu"]}
    only = [x for s in only for x in aliases.get(s, [s])]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)} "
                     f"(or big)")
    tuned = False if args.default_allocator else tune_allocator()
    torch_ok = have_torch()
    if torch_ok:
        import torch

        blas_torch = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
        torch_text = f"torch {torch.__version__} ({blas_torch}, 1 thread)"
    else:
        torch_text = "torch not installed (no PyTorch peer, no MKL bound)"
    print(f"numpy {np.__version__}; {blas_info()}; {torch_text}")
    print(f"{args.rounds} interleaved rounds of {args.seconds:g} CPU-s per measurement, "
          f"allocator {'tuned as the nnsim command does' if tuned else 'as is'}")
    print(f"load before: {load()}")
    for section in only:
        if section in SETUPS:
            versus(section, SETUPS[section], args, torch_ok)
        elif section == "every":
            every_section(args)
        elif section == "scaling":
            scaling_section(args, torch_ok)
        elif section == "records":
            records_section(args)
    print(f"\nload after: {load()}")


if __name__ == "__main__":
    main()
