"""Sweep wall time with -j 1 and -j 2 on a 4×256 network (4 runs), each in a fresh folder.

    python benchmarks/sweep.py [--steps N] [--repeat R]

With BLAS threads limited per worker, -j 2 should be close to 2× faster than -j 1 on a
machine with two free cores (each worker gets cores // jobs threads).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

GRID = "optimizer.lr=0.01,0.02,0.05,0.1"


def once(jobs: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nnsim", "sweep", "--set",
                        "model.hidden=[256,256,256,256]", "--grid", GRID, "--steps", str(steps),
                        "-j", str(jobs), "--out", os.path.join(tmp, "s")],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}; grid {GRID} on hidden=[256]*4, {args.steps} steps")
    for _ in range(args.repeat):
        j1, j2 = once(1, args.steps), once(2, args.steps)
        print(f"-j 1: {j1:6.2f} s   -j 2: {j2:6.2f} s   speed-up {j1 / j2:4.2f}x")


if __name__ == "__main__":
    main()
