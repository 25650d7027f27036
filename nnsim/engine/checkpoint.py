"""Checkpoints: everything a run needs to continue exactly as if it had never stopped.

A checkpoint is one `.npz` file: the config (TOML), the flat parameters, normalizer
buffers, optimizer state, the state of every random stream, the data order, the counters,
the dead-unit window of the telemetry and the kept history. It is written to a temporary file in the same folder and renamed over the
old one, so a kill during a save leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nnsim.config import Config, read_toml_text
from nnsim.engine.records import LayerRecord, StepRecord
from nnsim.errors import NnsimError

FORMAT = "nnsim-checkpoint"
VERSION = 1
FILE_NAME = "checkpoint.npz"


class CheckpointError(NnsimError):
    """A checkpoint that cannot be read or written; says which file and why."""


def checkpoint_path(where: str | Path) -> Path:
    """A folder means the checkpoint file inside it; a file path is taken as it is."""
    p = Path(where).expanduser()
    return p / FILE_NAME if p.is_dir() or not p.suffix else p


def check_writable(where: str | Path) -> Path:
    """Make sure a checkpoint can be written at `where` (creating its folder), before a run
    spends its time; returns the checkpoint's path."""
    path = checkpoint_path(where)
    if path.exists() and path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give --checkpoint a folder or a .npz file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{path.parent}: cannot create the checkpoint folder "
                              f"({exc.strerror or exc}); give --checkpoint a folder you can "
                              f"write") from None
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(f"{path.parent}: cannot write a checkpoint there "
                              f"({exc.strerror or exc}); give --checkpoint a folder you can "
                              f"write") from None
    return path


def _text(value: Any) -> np.ndarray:
    return np.array(json.dumps(value))


def save(sim, where: str | Path, history: list[StepRecord] = ()) -> Path:
    """Write `sim` (and the records in `history`) atomically; returns the file written."""
    path = checkpoint_path(where)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{path.parent}: cannot create the folder ({exc.strerror})") from None
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION),
        "config": np.array(sim.config.to_toml()),
        "params": sim.net.params,
        "data_order": sim.data._order,
        "data": _text({"pos": sim.data._pos, "seen": sim.data.examples_seen}),
        "rng": _text({name: rng.bit_generator.state for name, rng in sim.rngs.items()}),
        "sim": _text({
            "step": sim.step_count, "best_val": _num(sim.best_val),
            "evals_since_best": sim.evals_since_best,
            "best_step": getattr(sim, "best_step", 0), "stopped": sim.stopped,
            "divergence": None if sim.divergence is None else
            [sim.divergence.step, sim.divergence.where]}),
        "history": _text([r.to_dict() for r in history]),
    }
    for key, value in sim.net.buffers().items():
        arrays[f"buffer/{key}"] = value
    for key, value in sim.opt_state.items():
        arrays[f"state/{key}"] = value
    if sim.telemetry is not None and sim.telemetry.primed:
        arrays["telemetry/inactive_run"] = sim.telemetry.inactive_run
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def _num(x: float) -> Any:
    return x if math.isfinite(x) else str(x)


def _float(x: Any) -> float:
    return float(x)  # "inf" and "nan" parse too


def load(where: str | Path, registry=None):
    """Rebuild the Simulation saved at `where`; returns (simulation, history records)."""
    from nnsim.engine.simulation import Divergence, Simulation

    path = checkpoint_path(where)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if data.get("format") is None or str(data["format"]) != FORMAT:
        raise CheckpointError(f"{path}: not an nnsim checkpoint")
    if int(data["version"]) != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {int(data['version'])}; this nnsim "
                              f"reads version {VERSION}")
    try:
        config = Config.from_dict(read_toml_text(str(data["config"]), str(path)), registry)
        sim = Simulation(config, registry)
        _restore(sim, data)
        info = json.loads(str(data["sim"]))
        history = [record_from_dict(d) for d in json.loads(str(data["history"]))]
    except NnsimError:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
    sim.step_count = int(info["step"])
    sim.best_val = _float(info["best_val"])
    sim.evals_since_best = int(info["evals_since_best"])
    sim.best_step = int(info["best_step"])
    sim.stopped = info["stopped"]
    if info["divergence"] is not None:
        sim.divergence = Divergence(*info["divergence"])
    sim.last = history[-1] if history else None
    return sim, history


def _restore(sim, data: dict[str, np.ndarray]) -> None:
    def put(target: np.ndarray, key: str) -> None:
        value = data[key]
        if value.shape != target.shape:
            raise ValueError(f"{key} has shape {value.shape}, the network needs {target.shape}")
        np.copyto(target, value, casting="same_kind")

    put(sim.net.params, "params")
    for key, buffer in sim.net.buffers().items():
        put(buffer, f"buffer/{key}")
    for key, state in sim.opt_state.items():
        put(state, f"state/{key}")
    tel = sim.telemetry
    if tel is not None and "telemetry/inactive_run" in data:  # else primed at the next step
        put(tel.inactive_run, "telemetry/inactive_run")
        tel.primed = True
    order = data["data_order"]
    if order.shape != sim.data._order.shape:
        raise ValueError("the data order does not match the dataset")
    sim.data._order = order.astype(np.int64)
    info = json.loads(str(data["data"]))
    sim.data._pos, sim.data.examples_seen = int(info["pos"]), int(info["seen"])
    states = json.loads(str(data["rng"]))
    for name, rng in sim.rngs.items():
        rng.bit_generator.state = states[name]


def _value(x: Any) -> Any:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    return x


def record_from_dict(d: dict[str, Any]) -> StepRecord:
    """The inverse of StepRecord.to_dict."""
    layers = []
    for ld in d["layers"]:
        fixed = {name: ld[name] for name in LayerRecord._fields if name in ld}
        fixed["hist"] = tuple(ld["hist"])
        fixed["hist_range"] = tuple(ld["hist_range"])
        for name in ("act_mean", "act_std", "saturated", "dead", "grad_norm", "grad_in_norm",
                     "weight_norm", "update_ratio", "update_cos", "step_size"):
            fixed[name] = _value(fixed[name])
        extra = [k for k in ld if k not in LayerRecord._fields]
        fixed["state"] = tuple((k[:-5], _value(ld[k])) for k in extra if k.endswith("_norm"))
        fixed["learnable"] = tuple((k[:-5], _value(ld[k])) for k in extra if k.endswith("_mean"))
        layers.append(LayerRecord(**fixed))
    fields = {name: _value(d[name]) for name in StepRecord._fields if name != "layers"}
    return StepRecord(**fields, layers=tuple(layers))
