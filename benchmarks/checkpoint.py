"""Checkpoint size and cost: the default network's checkpoint with 4,096 kept records, and
a 3,000-step run with and without a checkpoint every 100 steps (as `nnsim run
--checkpoint DIR --checkpoint-every 100` does it).

    python benchmarks/checkpoint.py [--steps N] [--every K] [--repeat R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from nnsim.config import load
from nnsim.engine import Simulation, checkpoint
from nnsim.engine.history import History


def run(steps: int, every: int, folder: Path | None) -> float:
    sim, history = Simulation(load()), History(timeline=False)
    start = time.perf_counter()
    for record in sim.steps(steps):
        history.append(record)
        if folder is not None and record.step % every == 0:
            checkpoint.save(sim, folder, history.snapshot(), durable=False)
    if folder is not None:
        checkpoint.save(sim, folder, history.snapshot())
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sim, history = Simulation(load()), History(timeline=False)
        for record in sim.steps(4096):
            history.append(record)
        path = checkpoint.save(sim, Path(tmp) / "size", history.snapshot())
        print(f"default network, {len(history.snapshot())} records kept: checkpoint "
              f"{path.stat().st_size / 1e6:.2f} MB")
        for _ in range(args.repeat):
            plain = run(args.steps, args.every, None)
            saved = run(args.steps, args.every, Path(tmp) / "run")
            print(f"{args.steps} steps: {plain:.3f} s plain, {saved:.3f} s with a checkpoint "
                  f"every {args.every} steps: overhead {100 * (saved / plain - 1):+.1f} %")


if __name__ == "__main__":
    main()
