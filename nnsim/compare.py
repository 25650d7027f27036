"""Side-by-side runs: configs that differ in chosen settings, stepped in lockstep.

Every run starts from the same seed, so the data, its split, the minibatch order and the
initial weights (wherever the shapes and the initializer are the same) are identical: the
only difference is the one you asked for.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nnsim.config import Config, parse_set
from nnsim.engine.records import StepRecord
from nnsim.engine.simulation import Simulation
from nnsim.errors import ConfigError
from nnsim.formatting import fit, fmt
from nnsim.pluginmanager import Registry

TABLE_FIELDS = ("grad_norm", "act_std", "saturated", "dead", "update_ratio")


def split_values(text: str) -> list[str]:
    """'sgd,momentum' -> ['sgd', 'momentum']; commas inside [], {} or quotes do not split."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items]


def parse_vary(items: Iterable[str], option: str = "--vary") -> list[tuple[str, list[Any]]]:
    """['optimizer.name=sgd,momentum'] -> [('optimizer.name', ['sgd', 'momentum'])]. A key
    given twice, a value given twice (1e-3 and 0.001 are one value) and the number of
    steps (every run takes --steps) are refused: each would label runs that are not what
    their label says, or run one configuration twice."""
    varied: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(option, f"expected KEY=V1,V2,... (e.g. optimizer.name=sgd,"
                                      f"momentum), got {item!r}")
        if key in (k for k, _ in varied):
            raise ConfigError(option, f"{key} is varied twice; give all its values once "
                                      f"({key}=V1,V2,...)")
        if key == "train.steps":
            raise ConfigError(option, "train.steps cannot be varied: every run takes --steps "
                                      "steps (run one sweep per number of steps)")
        values: list[Any] = []
        for value in split_values(text):
            parsed = parse_set(f"{key}={value}")[1]
            if any(v == parsed and isinstance(v, bool) == isinstance(parsed, bool)
                   for v in values):
                raise ConfigError(option, f"{key}: the value {value} is given twice")
            values.append(parsed)
        varied.append((key, values))
    return varied


def _label_value(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("name", "") + "(" + ",".join(
            f"{k}={v}" for k, v in value.items() if k != "name") + ")"
    return str(value)


def _short(key: str) -> str:
    """'optimizer.name' -> 'optimizer', 'model.hidden' -> 'hidden'."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def variants(base: Config, varied: Sequence[tuple[str, list[Any]]],
             registry: Registry | None = None, fixed: Sequence[tuple[str, Any]] = ()
             ) -> list[tuple[str, Config]]:
    """Every combination of the varied values, as (label, config). `fixed`: overrides
    applied with each combination's (`--set` values that fit every run but not `base`)."""
    out = []
    for combo in itertools.product(*(values for _, values in varied)):
        overrides = [(key, value) for (key, _), value in zip(varied, combo)]
        label = " ".join(f"{_short(key)}={_label_value(value)}" for key, value in overrides)
        out.append((label, base.with_overrides([*fixed, *overrides], registry)))
    return out


@dataclass
class Comparison:
    labels: list[str]
    records: dict[str, list[StepRecord]]
    sims: dict[str, Simulation]


def compare(runs: Sequence[tuple[str, Config]], steps: int,
            registry: Registry | None = None) -> Comparison:
    """Step every run once per round, `steps` rounds (a diverged run stops early)."""
    sims = {label: Simulation(config, registry) for label, config in runs}
    records: dict[str, list[StepRecord]] = {label: [] for label in sims}
    for _ in range(steps):
        for label, sim in sims.items():
            if sim.divergence is None and sim.stopped is None:
                records[label].append(sim.step())
    return Comparison(list(sims), records, sims)


def table(result: Comparison) -> str:
    """Final numbers per run (with the effective lr), then per-layer statistics aligned
    across runs; numbers for people (`human`), non-finite ones as nan, inf, -inf."""
    width = max(len(label) for label in result.labels) + 2
    lines = [f"{'run':<{width}}{'step':>10}{'lr':>9}{'loss':>10}{'acc':>8}{'val_loss':>10}"
             f"{'val_acc':>9}  state"]
    for label in result.labels:
        recs = result.records[label]
        last = recs[-1] if recs else None
        evals = [r for r in recs if r.val_loss is not None]
        val = evals[-1] if evals else None
        lr = last.lr if last else result.sims[label].config.optimizer.hypers.get("lr")
        state = (f"diverged at {last.step}: {last.nonfinite}" if last and last.nonfinite
                 else "stopped early" if result.sims[label].stopped else "ok")
        lines.append(f"{label:<{width}}{fit(last and last.step, 10)}{fit(lr, 9, 3)}"
                     f"{fit(last and last.loss, 10)}{fmt(last and last.accuracy, '.3f'):>8}"
                     f"{fit(val and val.val_loss, 10)}"
                     f"{fmt(val and val.val_accuracy, '.3f'):>9}  {state}")
    hidden = max((len(r[-1].layers) - 1 for r in result.records.values() if r), default=0)
    columns = [f"L{i + 1}" for i in range(hidden)] + ["out"]
    for field in TABLE_FIELDS:
        lines.append("")
        lines.append(f"{field} by layer (last step; out = the output layer)")
        lines.append(f"{'run':<{width}}" + "".join(f"{c:>10}" for c in columns))
        for label in result.labels:
            recs = result.records[label]
            layers = list(recs[-1].layers) if recs else []
            by_column = {f"L{layer.index}": layer for layer in layers[:-1]}
            if layers:
                by_column["out"] = layers[-1]
            cells = []
            for column in columns:
                layer = by_column.get(column)
                value = getattr(layer, field) if layer is not None else None
                if layer is not None and layer.kind == "output" and field in ("act_std",
                                                                              "saturated",
                                                                              "dead"):
                    value = None  # no activation on the output layer
                cells.append(fit(value, 10, 3))
            lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)
