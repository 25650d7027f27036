"""TUI speed at 160×48: frames drawn per second while training, training speed inside the
TUI against headless, and how fast a key press takes effect at full training speed; then
the same keys, a panel switch and quitting with a 3×4096 network (steps of about 0.3 s).

    python benchmarks/tui.py [--seconds 5] [--presses 10] [--no-big]

The app runs headless (Textual's test driver renders every frame as a terminal would, minus
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
        await pilot.pause(seconds)
        elapsed = time.perf_counter() - t0
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
            "latency": latencies, "paint": paints}


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
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--presses", type=int, default=10)
    parser.add_argument("--no-big", action="store_true", help="skip the 3×4096 network")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    tune_allocator()
    config = Config.default()
    print(f"default experiment, {SIZE[0]}x{SIZE[1]}, training at full speed (max steps per "
          f"frame), {args.seconds:g} s per panel")
    base = headless_rate(config, args.seconds)
    print(f"  headless: {base:,.0f} steps/s (telemetry on)")
    for key, name in (("1", "layers"), ("2", "curves"), ("3", "distributions"),
                      ("4", "boundary"), ("5", "optimizer"), ("6", "depth")):
        result = asyncio.run(measure(config, args.seconds, args.presses if key == "1" else 0,
                                     key))
        print(f"  {name:<13} {result['fps']:5.1f} frames/s, {result['render_ms']:5.1f} ms to "
              f"draw the panel, training {result['tui_rate']:,.0f} steps/s = "
              f"{result['tui_rate'] / base:.0%} of headless")
        if result["latency"]:
            lat = [1000 * x for x in result["latency"]]
            paint = [1000 * x for x in result["paint"]]
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
