"""Layering: nothing outside the TUI imports Textual, so the engine, the CLI's headless
commands, the lessons and every plugin run where no terminal library is installed."""

import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
import nnsim, plugins
names = []
def walk(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name in ("nnsim.tui", "nnsim.__main__"):  # the TUI; `python -m nnsim`
            continue
        module = importlib.import_module(info.name)
        names.append(info.name)
        if info.ispkg:
            walk(module)
for package in (nnsim, plugins):
    walk(package)
from nnsim.engine import Simulation
Simulation().run(2)
print(len(names), sorted(m for m in sys.modules if m.split(".")[0] == "textual"))
"""


def test_no_module_outside_the_tui_imports_textual():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    count, textual = out.stdout.split(" ", 1)
    assert int(count) >= 30  # every module was imported: engine, CLI, lessons, plugins
    assert textual.strip() == "[]", textual
