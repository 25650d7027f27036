"""Every lesson and its control at many seeds: the margin table of `nnsim lessons --verify`,
plus, per lesson, the headless seconds of one pass over its runs (a lesson should be
watchable in the TUI within a minute) and its margin at every seed.

    python benchmarks/lessons.py [--seeds 0-9] [-j JOBS] [NAME ...]

A margin is ln(measured / threshold) of a check's tightest condition, > 0 where it holds;
a lesson is good when its smallest margin over the seeds is > 0 and its control's largest
is < 0. Exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

from nnsim.lessons import margin_table, parse_seeds, run_lesson, verify
from nnsim.pluginmanager import default_registry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="lessons (default: all)")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("-j", "--jobs", type=int, default=1)
    args = parser.parse_args()
    registry = default_registry()
    names = args.names or registry.names("lesson")
    seeds = parse_seeds(args.seeds)

    print("seconds for one pass over the runs (seed 0), lesson / control:")
    for name in names:
        lesson = registry.get("lesson", name)()
        times = []
        for control in (False, True):
            start = time.perf_counter()
            run_lesson(lesson, registry, seed=0, control=control)
            times.append(time.perf_counter() - start)
        print(f"  {name:<26} {times[0]:6.2f} / {times[1]:6.2f}", flush=True)

    rows = verify(names, seeds, jobs=args.jobs)
    print(f"\nmargins at seeds {args.seeds}, lesson | control:")
    for lesson, control in rows:
        cells = " ".join(f"{lesson.verdicts[s].margin:+.2f}|{control.verdicts[s].margin:+.2f}"
                         for s in seeds)
        print(f"  {lesson.name:<26} {cells}")
    print()
    print(margin_table(rows, registry))
    good = all(a.passes == len(seeds) and b.passes == 0 for a, b in rows)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
