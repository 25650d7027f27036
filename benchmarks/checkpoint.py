"""Checkpoint size and cost.

    python benchmarks/checkpoint.py [--steps 3000] [--every 100] [--rounds 15]

Size: the default network's checkpoint holding 4,096 records measured on every step (the
most a run keeps). Cost: `nnsim run --steps N` as the CLI runs it (records to /dev/null),
plain, with a final checkpoint, and with a checkpoint every `--every` steps; the three are
interleaved round by round and timed in CPU seconds (`time.process_time`), and the overhead
is the median over rounds of the per-round ratio, with its spread; the cost of the option
`--checkpoint-every` itself is the periodic run against the final-checkpoint run (the
option needs `--checkpoint`, so that run is the same command without it). Because whole runs vary
by more than the saves cost on a shared machine, the CPU time spent inside the saves is
also summed directly and given as a share of the rest of the run. BLAS runs one thread
(set OPENBLAS_NUM_THREADS to change it). The machine's load is printed before and after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse
import contextlib
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from nnsim.cli import main as nnsim
from nnsim.config import load
from nnsim.engine import Simulation, checkpoint


_save = checkpoint.save
#: CPU seconds inside checkpoint.save, periodic and final, in the current run
inside = {"periodic": 0.0, "final": 0.0}


def _timed_save(*args, **kwargs):
    start = time.process_time()
    try:
        return _save(*args, **kwargs)
    finally:
        inside["final" if kwargs.get("compact", True) else "periodic"] += \
            time.process_time() - start


checkpoint.save = _timed_save  # the CLI calls it as checkpoint.save


def timed(argv: list[str]) -> float:
    if "--checkpoint" in argv:  # a new run each round: the folder must not hold another's
        shutil.rmtree(argv[argv.index("--checkpoint") + 1], ignore_errors=True)
    inside.update(periodic=0.0, final=0.0)
    start = time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):
        code = nnsim(argv)
    if code != 0:
        raise SystemExit(f"nnsim {' '.join(argv)} exited {code}")
    return time.process_time() - start


def spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"median {statistics.median(values):+.1f} %, IQR {q[0]:+.1f} … {q[2]:+.1f} %"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulation(load())
        records = sim.run(4096)
        start = time.process_time()
        path = checkpoint.save(sim, Path(tmp) / "size", records)
        took = time.process_time() - start
        print(f"default network, 4,096 records measured on every step: checkpoint "
              f"{path.stat().st_size / 1e6:.2f} MB (a first save: {took * 1e3:.0f} ms CPU)")
        base = ["run", "--steps", str(args.steps), "--out", os.devnull]
        final = [*base, "--checkpoint", str(Path(tmp) / "final")]
        every = [*base, "--checkpoint", str(Path(tmp) / "every"),
                 "--checkpoint-every", str(args.every)]
        timed(base)  # warm up: imports, allocator
        rows: list[tuple[float, float, float]] = []
        shares: list[tuple[float, float]] = []  # (periodic, final) saves ÷ the rest, %
        for i in range(args.rounds):
            plain, fin = timed(base), timed(final)
            evr = timed(every)
            rows.append((plain, fin, evr))
            rest = evr - inside["periodic"] - inside["final"]
            shares.append((100 * inside["periodic"] / rest, 100 * inside["final"] / rest))
            print(f"round {i + 1:2d}: plain {plain:.3f} s, final checkpoint {fin:.3f} s, "
                  f"every {args.every} steps {evr:.3f} s CPU (of which saves "
                  f"{inside['periodic'] * 1e3:.0f} + {inside['final'] * 1e3:.0f} ms)")
        size = (Path(tmp) / "every" / checkpoint.FILE_NAME).stat().st_size
        with np.load(Path(tmp) / "every" / checkpoint.FILE_NAME) as npz:
            parts = {k: npz[k].nbytes for k in npz.files}
        history = sum(v for k, v in parts.items() if k.startswith("history"))
        kept = sum(v for k, v in parts.items() if k.startswith("snapshot"))
    print(f"\n{args.steps} steps of the default network, {args.rounds} rounds "
          f"(checkpoint at the end: {size / 1e6:.2f} MB, of which the history "
          f"{history / 1e6:.2f} MB and the snapshots kept for --from-step "
          f"{kept / 1e6:.2f} MB):")
    print(f"  a final checkpoint:         "
          f"{spread([100 * (f / p_ - 1) for p_, f, _ in rows])}")
    print(f"  a checkpoint every {args.every:<4d}:   "
          f"{spread([100 * (e / p_ - 1) for p_, _, e in rows])}")
    print(f"  --checkpoint-every {args.every} itself (against --checkpoint alone, which "
          f"it needs): {spread([100 * (e / f - 1) for _, f, e in rows])}")
    print(f"  CPU inside the saves, every {args.every}, as a share of the rest of the run: "
          f"periodic {spread([p_ for p_, _ in shares])}; final "
          f"{spread([f for _, f in shares])}; both "
          f"{spread([p_ + f for p_, f in shares])}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
