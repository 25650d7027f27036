"""Memory over a long run: 200,000 toy steps with telemetry, records kept in a bounded History
as the TUI keeps them. Prints the resident set size as it goes; it should stay flat.

    python benchmarks/memory.py [--steps 200000] [--every 20000]
"""

from __future__ import annotations

import argparse
import os
import time

from nnsim.config import Config
from nnsim.engine import Simulation
from nnsim.engine.history import History
from nnsim.engine.memory import tune_allocator


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=20_000)
    args = parser.parse_args()
    tune_allocator()
    config = Config.from_dict({"data": {"name": "circle", "samples": 2000},
                               "model": {"hidden": [32, 32, 32]},
                               "train": {"batch_size": 64, "eval_every": 50}})
    sim = Simulation(config)
    history = History()
    start = time.perf_counter()
    first = None
    print(f"{'step':>8} {'RSS MiB':>8} {'steps/s':>9}")
    for record in sim.steps(args.steps, stop_on_divergence=False):
        history.append(record)
        if record.step % args.every == 0:
            rss = rss_mib()
            first = first or rss
            rate = record.step / (time.perf_counter() - start)
            print(f"{record.step:>8} {rss:>8.1f} {rate:>9,.0f}", flush=True)
    print(f"growth from the first reading to the last: {rss_mib() - first:+.1f} MiB "
          f"(history keeps the newest {history.capacity} records)")


if __name__ == "__main__":
    main()
