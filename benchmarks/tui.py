"""TUI speed at 160×48: frames drawn per second while training, training speed inside the
TUI against headless, and how fast a key press takes effect at full training speed; then
the same keys, a panel switch and quitting with a 3×4096 network (steps of about 0.3 s).

    python benchmarks/tui.py [--seconds 4] [--rounds 3] [--presses 10] [--no-big]

Training speed is compared with headless training (`Simulation.step`, telemetry on every
step) measured just before each panel, round by round, so that a slow moment of the machine
touches both; the ratio printed is the median over rounds (min–max beside it). Also printed:
the training thread alone (the Runner without a screen: what sampling the statistics gains)
and the share of a core the UI thread used (its own CPU time over wall time), which is what
training loses under one GIL. The app runs headless (Textual's test driver renders every frame as a terminal would, minus
the terminal). A frame is one redraw of the status line and the active panel from the newest
records; the screen is composited from them by Textual.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from textual import events  # noqa: E402

from nnsim.config import Config  # noqa: E402
from nnsim.engine import Simulation  # noqa: E402
from nnsim.engine.memory import tune_allocator  # noqa: E402
from nnsim.engine.runner import SPEEDS  # noqa: E402
from nnsim.tui.app import StatusBar, make_app  # noqa: E402

SIZE = (160, 48)
MAX_SPEED = len(SPEEDS) - 1


def headless_rate(config: Config, seconds: float) -> float:
    sim = Simulation(config)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sim.step()
        n += 1
    return n / (time.perf_counter() - start)


async def measure(config: Config, seconds: float, presses: int, panel: str) -> dict:
    app = make_app(config, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        app.runner.speed, app.runner.ramp = MAX_SPEED, False
        await pilot.press(panel)
        await pilot.pause(0.2)
        view = app.query_one(f"#{app.view_name}")
        frames = {"n": 0, "render_s": 0.0}
        original = view.lines

        def counting_lines(width, height):
            start = time.perf_counter()
            result = original(width, height)
            frames["render_s"] += time.perf_counter() - start
            frames["n"] += 1
            return result

        view.lines = counting_lines
        await pilot.press("space")
        await pilot.pause(0.5)  # warm up
        frames["n"], frames["render_s"] = 0, 0.0
        step0, t0 = app.runner.sim.step_count, time.perf_counter()
        ui0 = time.thread_time()
        await pilot.pause(seconds)
        elapsed = time.perf_counter() - t0
        ui_share = (time.thread_time() - ui0) / elapsed
        steps = app.runner.sim.step_count - step0
        fps = frames["n"] / elapsed
        render_ms = 1000 * frames["render_s"] / max(frames["n"], 1)

        latencies, paints = [], []
        bar = app.query_one(StatusBar)
        for _ in range(presses):
            want_paused = not app.runner.paused
            start = time.perf_counter()
            app.post_message(events.Key("space", " "))  # as the terminal driver does
            while app.runner.paused != want_paused:
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - start)
            word = "paused" if want_paused else "running"
            while not bar.plain.lstrip().startswith(word):
                await asyncio.sleep(0.001)
            paints.append(time.perf_counter() - start)
            await pilot.pause(0.2)
        await pilot.press("q")
    return {"fps": fps, "render_ms": render_ms, "tui_rate": steps / elapsed,
            "ui_share": ui_share, "latency": latencies, "paint": paints}


def runner_rate(config: Config, seconds: float) -> float:
    """The training thread alone at full speed, no screen: statistics sampled as in the TUI."""
    import threading

    from nnsim.engine.runner import Runner

    runner = Runner(config, speed=MAX_SPEED)
    done = threading.Event()
    thread = threading.Thread(target=runner.loop, args=(done.is_set,))
    thread.start()
    time.sleep(0.3)
    step0, t0 = runner.sim.step_count, time.perf_counter()
    time.sleep(seconds)
    rate = (runner.sim.step_count - step0) / (time.perf_counter() - t0)
    done.set()
    thread.join()
    return rate


async def measure_big(presses: int) -> dict:
    """Keys with a 3×4096 network training: pause/resume → status line, a panel switch →
    the new panel drawn, q → the app gone."""
    config = Config.default().with_overrides([("model.hidden", [4096, 4096, 4096])])
    app = make_app(config, paused=False)
    result: dict = {"space": [], "panel": []}
    async with app.run_test(size=SIZE) as pilot:
        while app.runner.sim.step_count < 3:
            await asyncio.sleep(0.05)
        bar = app.query_one(StatusBar)
        for i in range(presses):
            want = "paused" if not app.runner.paused else "running"
            start = time.perf_counter()
            app.post_message(events.Key("space", " "))
            while not bar.plain.lstrip().startswith(want):
                await asyncio.sleep(0.001)
            result["space"].append(time.perf_counter() - start)
            await pilot.pause(0.4)
            key = "2" if app.view_name != "curves" else "1"
            view_name = "curves" if key == "2" else "layers"
            view = app.query_one(f"#{view_name}")
            drawn = view.frame
            start = time.perf_counter()
            app.post_message(events.Key(key, key))
            while app.view_name != view_name or view.frame is drawn or not view._strips:
                await asyncio.sleep(0.001)
            result["panel"].append(time.perf_counter() - start)
            await pilot.pause(0.4)
        if app.runner.paused:
            app.post_message(events.Key("space", " "))
            await pilot.pause(0.5)
        start = time.perf_counter()
        await pilot.press("q")
    result["quit"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--no-big", action="store_true", help="skip the 3×4096 network")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    tune_allocator()
    config = Config.default()
    print(f"default experiment, {SIZE[0]}x{SIZE[1]}, training at full speed (max steps per "
          f"frame), {args.seconds:g} s per panel, {args.rounds} rounds")
    panels = (("1", "layers"), ("2", "curves"), ("3", "distributions"), ("4", "boundary"),
              ("5", "optimizer"), ("6", "depth"))
    results: dict[str, list[dict]] = {name: [] for _, name in panels}
    alone: list[float] = []
    for round_ in range(args.rounds):
        base = headless_rate(config, args.seconds)
        alone.append(runner_rate(config, args.seconds) / base)
        for key, name in panels:
            base = headless_rate(config, args.seconds)
            presses = args.presses if key == "1" and round_ == 0 else 0
            result = asyncio.run(measure(config, args.seconds, presses, key))
            result["ratio"] = result["tui_rate"] / base
            result["base"] = base
            results[name].append(result)
    print(f"  the training thread alone (no screen) ÷ headless: median "
          f"{statistics.median(alone):.2f} ({min(alone):.2f}–{max(alone):.2f})")
    for _, name in panels:
        rs = results[name]
        ratios = [r["ratio"] for r in rs]
        med = statistics.median
        print(f"  {name:<13} {med(r['fps'] for r in rs):5.1f} frames/s, "
              f"{med(r['render_ms'] for r in rs):5.1f} ms to draw the panel, UI thread "
              f"{med(r['ui_share'] for r in rs):4.0%} of a core; training "
              f"{med(r['tui_rate'] for r in rs):,.0f} steps/s (headless "
              f"{med(r['base'] for r in rs):,.0f}) = {med(ratios):.0%} of headless "
              f"({min(ratios):.0%}–{max(ratios):.0%})")
        if rs[0]["latency"]:
            lat = [1000 * x for x in rs[0]["latency"]]
            paint = [1000 * x for x in rs[0]["paint"]]
            print(f"  key press → training paused/resumed: median {statistics.median(lat):.0f} "
                  f"ms, max {max(lat):.0f} ms; → status line redrawn: median "
                  f"{statistics.median(paint):.0f} ms, max {max(paint):.0f} ms "
                  f"({len(lat)} presses)")
    if args.no_big:
        return
    big = asyncio.run(measure_big(max(args.presses // 2, 3)))
    space = [1000 * x for x in big["space"]]
    panel = [1000 * x for x in big["panel"]]
    print("3×4096 network, training (a step takes about 0.3 s):")
    print(f"  space → status line redrawn: median {statistics.median(space):.0f} ms, max "
          f"{max(space):.0f} ms; panel switch → panel drawn: median "
          f"{statistics.median(panel):.0f} ms, max {max(panel):.0f} ms ({len(space)} each)")
    print(f"  q → app closed: {1000 * big['quit']:.0f} ms")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
