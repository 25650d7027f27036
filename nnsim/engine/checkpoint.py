"""Checkpoints: everything a run needs to continue exactly as if it had never stopped.

A checkpoint is one `.npz` file: the config (TOML), the flat parameters, normalizer
buffers, optimizer state, the state of every random stream, the data order, the counters,
the dead-unit window of the telemetry, the kept history and the kept snapshots. It is
written to a temporary file in the same folder and renamed over the old one, so a kill
during a save leaves the previous checkpoint loadable.

While a run saves every N steps, each save appends its new records to a file in a folder
beside the checkpoint (`checkpoint.parts/`) and writes each new kept snapshot there once;
the checkpoint names them. The final save takes them back into the one file and removes
the folder.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import operator
import os
import re
import struct
import uuid
import zlib
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnsim.config import Config, read_toml_text
from nnsim.engine.records import LAYER_SCALARS, LayerRecord, StepRecord
from nnsim.engine.writers import restore_nonfinite
from nnsim.errors import ConfigError, NnsimError, cap

FORMAT = "nnsim-checkpoint"
#: 2: history chunks may be coded (`CODING`) and snapshot descriptions UTF-8, which an
#: nnsim reading only version 1 would misread; version 1 files still load
VERSION = 2
READS = (1, 2)
FILE_NAME = "checkpoint.npz"
#: step counters read from a checkpoint stay below this (they are int64 in the records)
MAX_STEP = 2**62
#: a checkpoint whose arrays hold fewer bytes is made in memory and written in one call
IN_MEMORY = 16 * 2**20
#: saves at most this many steps apart take their histograms from the telemetry's kept
#: counts (`Telemetry.keep_counts`); rarer ones cost too little for the counts' memory
KEEP_COUNTS_EVERY = 1000


class CheckpointError(NnsimError):
    """A checkpoint that cannot be read or written; says which file and why."""


def checkpoint_path(where: str | Path) -> Path:
    """A folder means the checkpoint file inside it; a file path is taken as it is."""
    p = Path(where).expanduser()
    try:
        folder = p.is_dir()
    except OSError as exc:  # a name longer than the system takes, say
        raise CheckpointError(f"{cap(str(p), 80)}: {exc.strerror or exc}; give a shorter "
                              f"name") from None
    return p / FILE_NAME if folder or not p.suffix else p


def check_writable(where: str | Path) -> Path:
    """Make sure a checkpoint can be written at `where` (creating its folder), before a run
    spends its time; returns the checkpoint's path."""
    path = checkpoint_path(where)
    parts = parts_path(path)
    # the longest name a save writes beside the checkpoint: its temporary file
    longest = max(len(os.fsencode(n)) for n in (_temporary(path).name, parts.name,
                                                  f".{path.name}.lock"))
    try:
        limit = os.pathconf(path.parent if path.parent.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    if longest > limit:
        raise CheckpointError(f"{cap(path.name, 60)}: too long a name for a checkpoint here "
                              f"(saves write files named {longest} bytes beside it, the "
                              f"folder takes {limit}); give --checkpoint a name of at most "
                              f"{len(os.fsencode(path.name)) - (longest - limit)} bytes")
    if path.exists() and path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give --checkpoint a folder or a .npz file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{path.parent}: cannot create the checkpoint folder "
                              f"({exc.strerror or exc}); give --checkpoint a folder you can "
                              f"write") from None
    if parts.exists() and not parts.is_dir():
        raise CheckpointError(f"{parts}: is not a folder; a run that saves every N steps keeps "
                              f"its snapshots and new records there; move it, or give "
                              f"--checkpoint another folder")
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(f"{path.parent}: cannot write a checkpoint there "
                              f"({exc.strerror or exc}); give --checkpoint a folder you can "
                              f"write") from None
    return path


@contextlib.contextmanager
def writer_lock(where: str | Path):
    """Hold the checkpoint at `where` for one writer: a second nnsim run that would save to
    it at the same time is refused at its start (two runs saving every N steps to one
    checkpoint would remove each other's parts). An advisory lock on a hidden file beside
    the checkpoint, released when the run ends or its process dies; where the system has
    no such locks, nothing is checked."""
    try:
        import fcntl
    except ImportError:  # not on this system
        yield
        return
    path = checkpoint_path(where)
    try:
        f = open(path.with_name(f".{path.name}.lock"), "a")
    except OSError:  # a folder that cannot hold it: check_writable says why, if it matters
        yield
        return
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CheckpointError(f"{path}: another nnsim run is saving to this checkpoint "
                                  f"now; give --checkpoint another folder") from None
        for stale in _stale_temporaries(path):  # left by a writer killed during a save
            with contextlib.suppress(OSError):
                stale.unlink()
        yield


def _text(value: Any) -> np.ndarray:
    return np.array(json.dumps(value))


def save(sim, where: str | Path, history: Sequence[StepRecord] = (), durable: bool = True,
         snapshots=None, compact: bool = True) -> Path:
    """Write `sim` (and the records in `history`) atomically; returns the file written.

    The file is written beside the old one and renamed over it, so a killed process always
    leaves a whole checkpoint. `durable` also syncs it to the disk before the rename (safe
    from a power cut, a few ms more); `compact` stores the history as one compressed chunk
    per layout, without the rows that fell out of it (30 chunks of 100 records of the
    default network: 6 % smaller, for about 30 ms). Without it (saves every N steps), a
    save compresses only the records new since the last save, appends them and writes each
    new snapshot to files in `parts_path`, and the checkpoint only names them, so a save
    costs the same however long the run; a `compact` save takes them back into the one
    file."""
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
            "telemetry": sim.telemetry is not None,
            "divergence": None if sim.divergence is None else
            [sim.divergence.step, sim.divergence.where]}),
    }
    for key, value in sim.net.buffers().items():
        arrays[f"buffer/{key}"] = value
    for key, value in sim.opt_state.items():
        arrays[f"state/{key}"] = value
    if sim.telemetry is not None and sim.telemetry.primed:
        arrays["telemetry/inactive_run"] = sim.telemetry.inactive_run
    parts = parts_path(path)
    tmp = _temporary(path)
    try:
        kept, files = encode_history(sim, history, compact, None if compact else parts,
                                     durable)
        arrays.update(kept)
        if snapshots is not None:  # kept steps a later run can branch from (--from-step)
            bundle, named = _snapshot_bundle(sim, snapshots, None if compact else parts,
                                             durable)
            arrays.update(bundle)
            files |= named
        bad = next((k for k, a in arrays.items() if np.asarray(a).dtype.hasobject), None)
        if bad is not None:  # (a plugin's buffer of objects: numbers only, never pickles)
            raise CheckpointError(f"{path}: cannot write {bad}: it holds Python objects, "
                                  f"not numbers")
        with open(tmp, "wb") as f:
            if sum(a.nbytes for a in arrays.values()) < IN_MEMORY:
                f.write(npz_bytes(arrays))  # made in memory and written at once
            else:  # a large network: no second copy of it in memory
                np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: cannot write ({exc.strerror or exc})") from None
    _tidy(parts, files)
    return path


_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # a zip entry's local header
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # … its central directory record
_END = struct.Struct("<4sHHHHIIH")  # the end of the central directory
_DOS_DATE = 0x21  # 1980-01-01, as zip counts days
_UTF8 = 0x800  # the flag saying an entry's name is UTF-8 (names come from plugins too)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """`arrays` as the bytes of an `.npz` file (a zip of stored `.npy` entries, named as
    `np.savez` names them), made directly: an entry is its headers, its `.npy` header and
    its bytes. `np.load` reads back exactly what `np.savez` would have written; the zip
    itself is plainer (no zip64 fields, a fixed date, arrays in C order). For the dozen
    small arrays of a periodic save this takes a third of the time of `np.savez`, which
    goes through zipfile's general machinery. Small files only (no zip64): a save under
    `IN_MEMORY` bytes. Object arrays are refused (no pickles)."""
    pieces: list[bytes] = []
    central: list[bytes] = []
    at = 0
    for name, value in arrays.items():
        a = np.asarray(value, order="C")
        if a.dtype.hasobject:
            raise TypeError(f"{name}: object arrays are not saved")
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(a))
        head, data = header.getvalue(), a.tobytes()
        crc, size = zlib.crc32(data, zlib.crc32(head)), len(head) + len(data)
        fname = f"{name}.npy".encode()
        flags = 0 if fname.isascii() else _UTF8  # as zipfile marks a name beyond ASCII
        local = _LOCAL.pack(b"PK\x03\x04", 20, flags, 0, 0, _DOS_DATE, crc, size, size,
                            len(fname), 0)
        central.append(_CENTRAL.pack(b"PK\x01\x02", 20, 20, flags, 0, 0, _DOS_DATE, crc, size,
                                     size, len(fname), 0, 0, 0, 0, 0, at) + fname)
        pieces += [local, fname, head, data]
        at += len(local) + len(fname) + size
    directory = b"".join(central)
    return b"".join(pieces) + directory + _END.pack(
        b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), at, 0)


def _temporary(path: Path) -> Path:
    """The file a save writes before renaming it over `path`: one per writer and save, so
    two runs sharing a folder never write the same one (`_stale_temporaries` finds those
    of writers that died)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of saves to `path` whose process is gone (killed during a save)."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)\.[0-9a-f]{8}\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    stale = []
    for name in names:
        found = pattern.fullmatch(name)
        if found is None:
            continue
        pid = int(found.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stale.append(path.parent / name)
        except (OSError, OverflowError):
            pass  # alive but another user's, or not a process id: leave it
    return stale


def parts_path(path: Path) -> Path:
    """The folder beside the checkpoint file `path` that holds what periodic saves write
    once and do not rewrite (the kept snapshots, and the history, appended to); a final
    save takes them back into the file and removes the folder. `checkpoint.npz` has
    `checkpoint.parts`; a name without `.npz` keeps all of it (`lr0.01` has `lr0.01.parts`,
    not `lr0.parts`), so two checkpoints never share one."""
    name = path.name[:-len(".npz")] if path.name.endswith(".npz") else path.name
    return path.with_name(f"{name}.parts")


def _parts_to_read(path: Path) -> Path:
    """`parts_path(path)`, or where earlier versions put it for a name without `.npz`
    (`lr0.01` → `lr0.parts`), when only that one exists."""
    parts = parts_path(path)
    legacy = path.with_name(f"{path.stem}.parts")
    if legacy != parts and not parts.exists() and legacy.is_dir():
        return legacy
    return parts


def _read_part(parts: Path, name: str) -> np.ndarray:
    """The bytes of the file `name` in a checkpoint's parts folder; a missing one says that
    the folder belongs with the checkpoint."""
    try:
        return np.fromfile(parts / name, np.uint8)
    except FileNotFoundError:
        raise CheckpointError(f"{parts / name}: missing; this checkpoint was saved while its "
                              f"run was going and keeps its records and snapshots in "
                              f"{parts.name}/ beside it: copy that folder with it (after "
                              f"the file, while the run is going)") from None
    except OSError as exc:
        raise CheckpointError(f"{parts / name}: cannot read ({exc.strerror or exc})") from None


def _tidy(parts: Path, keep: set[str]) -> None:
    """Remove the files in `parts` that the checkpoint just written does not name (snapshots
    thinned out, or all of them after a final save), and the folder once it is empty."""
    try:
        names = os.listdir(parts)
    except OSError:
        return
    for name in names:
        if name not in keep and (_PART.fullmatch(name) or _HISTORY_PART.fullmatch(name)):
            with contextlib.suppress(OSError):
                os.unlink(parts / name)
    if not keep:
        with contextlib.suppress(OSError):
            os.rmdir(parts)


# ---------------------------------------------------------------- history as columns

#: per-layer fields stored as columns: the declared one-number statistics
_LAYER_FLOATS = LAYER_SCALARS
#: global fields stored as columns (None kept apart in a mask)
_GLOBAL_FLOATS = tuple(f for f in StepRecord._fields
                       if f not in ("step", "layers", "nonfinite"))
#: a save compresses only the records that are new since the previous save, as one chunk;
#: past this many chunks, neighbouring chunks of one layout are merged (small chunks
#: compress less well)
MAX_CHUNKS = 64


def _layout(record: StepRecord) -> list:
    return [[layer.index, layer.kind, layer.width, len(layer.hist),
             [n for n, _ in layer.state], [n for n, _ in layer.learnable]]
            for layer in record.layers]


def _pack(a: np.ndarray, level: int = 1) -> np.ndarray:
    """`a` (2-D) compressed at zlib `level`: column by column, each value's bytes apart (the
    sign and exponent bytes of a slowly changing statistic compress well, the low mantissa
    bytes do not)."""
    planes = np.ascontiguousarray(np.ascontiguousarray(a.T).view(np.uint8)
                                  .reshape(-1, a.dtype.itemsize).T)
    return np.frombuffer(zlib.compress(planes.tobytes(), level), np.uint8)


def _unpack(blob: np.ndarray, dtype: str, shape: tuple[int, int]) -> np.ndarray:
    dt = np.dtype(dtype)
    n = shape[0] * shape[1]
    raw = np.frombuffer(zlib.decompress(blob.tobytes(), bufsize=max(n * dt.itemsize, 1)),
                        np.uint8)
    if raw.size != n * dt.itemsize:
        raise ValueError(f"a history chunk holds {raw.size} bytes, its shape needs "
                         f"{n * dt.itemsize}")
    cols = np.ascontiguousarray(raw.reshape(dt.itemsize, n).T).view(dt)
    return cols.reshape(shape[1], shape[0]).T


_STATS = operator.itemgetter(*(LayerRecord._fields.index(f) for f in _LAYER_FLOATS))
_GLOBALS = operator.itemgetter(*(StepRecord._fields.index(f) for f in _GLOBAL_FLOATS))
_LAYERS = operator.attrgetter("layers")
_STEP = operator.attrgetter("step")
_WHICH = operator.attrgetter("index", "kind", "width")
_HIST, _RANGE = operator.attrgetter("hist"), operator.attrgetter("hist_range")
_STATE, _LEARN = operator.attrgetter("state"), operator.attrgetter("learnable")
_NAME, _VALUE = operator.itemgetter(0), operator.itemgetter(1)
_chain = itertools.chain.from_iterable


def _uniform(layers: list[LayerRecord], layout: list, m: int) -> bool:
    """Whether `layers` (the layers of m measured records, record after record) are laid out
    as `layout` in every record: which layer, histogram length, state and learnable names.
    List comparisons, so the common case costs no Python loop per record."""
    if len(layers) != m * len(layout):
        return False
    which = [(index, kind, width) for index, kind, width, *_ in layout]
    bins = [nh for _, _, _, nh, _, _ in layout]
    state = [n for *_, st, _ in layout for n in st]
    learn = [n for *_, le in layout for n in le]
    return (list(map(_WHICH, layers)) == which * m
            and list(map(len, map(_HIST, layers))) == bins * m
            and list(map(_NAME, _chain(map(_STATE, layers)))) == state * m
            and list(map(_NAME, _chain(map(_LEARN, layers)))) == learn * m)


def _counted(sim, records: list[StepRecord]) -> np.ndarray | None:
    """The histogram counts of the measured ones of `records`, one row each, as the
    simulation's telemetry kept them (`Telemetry.keep_counts`), when it kept every one of
    them, newest last: they then share one layout as well. None otherwise (records read
    from a checkpoint, more than it keeps, none measured)."""
    kept = getattr(getattr(sim, "telemetry", None), "counts", None)
    layers = [r.layers for r in records if r.layers]
    m = len(layers)
    if not kept or not m or m > len(kept):
        return None
    tail = list(itertools.islice(kept, len(kept) - m, None))
    if not all(map(operator.is_, map(_NAME, tail), layers)):
        return None
    return np.concatenate(list(map(_VALUE, tail))).reshape(m, len(tail[0][1]))


def _columns(records: list[StepRecord], layout: list, counts: np.ndarray | None = None
             ) -> dict[str, np.ndarray]:
    """The records' numbers as arrays, one row per record (rows of unmeasured records: NaN
    statistics, empty histograms). Every measured record must have `layout` (`_runs` makes
    sure). The numbers are gathered by `np.fromiter` over the records' fields, with no
    Python loop per record; the histograms are `counts` when given (`_counted`)."""
    n, g, s = len(records), len(_GLOBAL_FLOATS), len(_LAYER_FLOATS)
    glob = np.array(list(map(_GLOBALS, records)), dtype=object).reshape(n, g)
    none = glob == None  # noqa: E711 — elementwise on an object array
    glob[none] = np.nan
    measured = np.fromiter(map(bool, map(_LAYERS, records)), bool, count=n)
    rows = np.flatnonzero(measured)
    m, nl = len(rows), len(layout)
    layers = list(_chain(records[i].layers for i in rows))
    nstate = sum(len(st) for *_, st, _ in layout)
    nlearn = sum(len(le) for *_, le in layout)
    bins = sum(nh for _, _, _, nh, _, _ in layout)

    def gather(values, count: int, dtype=np.float64) -> np.ndarray:
        return np.fromiter(values, dtype, count=m * count).reshape(m, count)

    stats = gather(_chain(map(_STATS, layers)), nl * s)
    state = gather(map(_VALUE, _chain(map(_STATE, layers))), nstate)
    learn = gather(map(_VALUE, _chain(map(_LEARN, layers))), nlearn)
    blocks, a, b = [], 0, 0
    for j, (*_, st, le) in enumerate(layout):  # each layer: statistics, state, learnable
        blocks += [stats[:, j * s:(j + 1) * s], state[:, a:a + len(st)],
                   learn[:, b:b + len(le)]]
        a, b = a + len(st), b + len(le)
    blocks.append(gather(_chain(map(_RANGE, layers)), 2 * nl))
    values = np.full((n, sum(x.shape[1] for x in blocks)), np.nan)
    hist = np.zeros((n, bins), np.int64)
    if m and layout:
        values[rows] = np.concatenate(blocks, axis=1)
        hist[rows] = gather(_chain(map(_HIST, layers)), bins, np.int64) if counts is None \
            else counts
    return {"step": np.fromiter(map(_STEP, records), np.int64, count=n),
            "global": glob.astype(np.float64), "none": none,
            "measured": measured, "values": values, "hist": hist}


#: how a chunk's numbers are coded before compression (`_encode`): 0 as they are; 1 with
#: each histogram as its change from the row before, and each layer's step size as its
#: difference from update_ratio · weight_norm / grad_norm (both hold ‖ΔW‖), which is small
CODING = 1
#: the step size, and the statistics it is predicted from (`_predictions`)
_PREDICTED = ("step_size", "update_ratio", "weight_norm", "grad_norm")


def _predictions(layout: list, lnames: Sequence[str]) -> list[tuple[int, int, int, int]]:
    """Per layer, the columns of (step size, update ratio, weight norm, gradient norm) in a
    chunk's values, when the statistics named `lnames` include all four."""
    if not set(_PREDICTED) <= set(lnames):
        return []
    at = [list(lnames).index(name) for name in _PREDICTED]
    out, c = [], 0
    for *_, state, learn in layout:
        out.append(tuple(c + i for i in at))
        c += len(lnames) + len(state) + len(learn)
    return out  # type: ignore[return-value]


def _zigzag(d: np.ndarray) -> np.ndarray:
    """Signed integers as unsigned ones, small magnitudes small: 0, −1, 1, −2 → 0, 1, 2, 3."""
    bits = 8 * d.dtype.itemsize
    return ((d << 1) ^ (d >> (bits - 1))).view(d.dtype.str.replace("i", "u"))


def _unzigzag(z: np.ndarray) -> np.ndarray:
    signed = z.view(z.dtype.str.replace("u", "i"))
    return (z >> 1).view(signed.dtype) ^ -(signed & 1)


def _predicted(values: np.ndarray, cols: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A step-size column's prediction from the same rows' other columns, as bits, and where
    it is used: where it and its inputs are normal numbers (elsewhere the value is stored as
    it is: IEEE arithmetic on normal numbers is the same on every machine; a NaN's bits or
    a subnormal's treatment need not be)."""
    _, ratio, weight, grad = cols
    with np.errstate(all="ignore"):
        guess = (values[:, ratio].astype(np.float64) * values[:, weight] / values[:, grad]
                 ).astype(values.dtype)
    # normal numbers only (finite, not subnormal, not zero), in and out: a process that
    # flushes subnormals to zero would otherwise compute another prediction
    tiny = np.finfo(values.dtype).tiny
    ok = np.ones(len(values), bool)
    with np.errstate(invalid="ignore"):
        for x in (guess, values[:, ratio], values[:, weight], values[:, grad]):
            ok &= np.isfinite(x) & (np.abs(x) >= tiny)
    return guess.view(f"i{values.dtype.itemsize}"), ok


def _code_values(values: np.ndarray, layout: list, lnames: Sequence[str],
                 decode: bool = False) -> np.ndarray:
    """`values` (floats) with each step-size column replaced by its zigzagged difference
    from its prediction (`decode`: the other way round). The columns it is predicted from
    are never themselves coded, so each prediction is the same both ways."""
    if values.dtype.kind != "f":
        return values
    values = values.copy()
    ints = values.view(f"i{values.dtype.itemsize}")
    uints = values.view(f"u{values.dtype.itemsize}")
    for cols in _predictions(layout, lnames):
        guess, ok = _predicted(values, cols)
        target = cols[0]
        if decode:
            ints[:, target] = np.where(ok, _unzigzag(uints[:, target].copy()) + guess,
                                       ints[:, target])
        else:
            uints[:, target] = np.where(ok, _zigzag(ints[:, target] - guess),
                                        uints[:, target])
    return values


def _encode(cols: dict[str, np.ndarray], layout: list, dtype: str,
            nonfinite: dict[str, str], level: int = 1, coding: int | None = None
            ) -> tuple[bytes, dict]:
    """The columns as one chunk of bytes, and its description. `level` 0 (periodic saves)
    stores the bytes as they are, in zlib's format: about twice the size of level 1, for
    a fifth of its compression time; a final save compresses them. The numbers are coded
    first (`CODING`) when they are compressed: the default network's 4,096 records
    compress 9 % smaller, and faster; an uncompressed chunk is left as it is."""
    if coding is None:
        coding = CODING if level else 0
    hist = cols["hist"].astype(np.int64)
    with np.errstate(over="ignore"):  # past float32's range: inf, as the network holds it
        values = cols["values"].astype(dtype)
    if coding == 1:
        hist = _zigzag(np.diff(hist, axis=0, prepend=np.zeros((1, hist.shape[1]), np.int64)))
        values = _code_values(values, layout, _LAYER_FLOATS)
    hist_dtype = "uint16" if not hist.size or (hist.min() >= 0 and hist.max() < 2**16) \
        else str(hist.dtype)
    flags = np.concatenate([cols["none"], cols["measured"][:, None]], axis=1)
    parts = [_pack(cols["step"][:, None], level), _pack(cols["global"], level),
             _pack(values, level), np.packbits(flags, axis=-1).ravel(),
             _pack(hist.astype(hist_dtype), level)]
    meta = {"rows": len(cols["step"]), "layers": layout, "dtype": dtype, "hist": hist_dtype,
            "parts": [len(x) for x in parts], "nonfinite": nonfinite, "level": level,
            "coding": coding}
    return b"".join(x.tobytes() for x in parts), meta


def _chunk(records: list[StepRecord], layout: list, dtype: str, level: int = 1,
           counts: np.ndarray | None = None) -> tuple[np.ndarray, bytes, dict]:
    """Records of one layout (or unmeasured: no layers) as columns compressed at `level`,
    and the chunk's description. Values are kept at the network's precision (`dtype`).
    `counts`: the measured records' histograms, as `_counted` gives them."""
    cols = _columns(records, layout, counts)
    blob, meta = _encode(cols, layout, dtype,
                         {str(r.step): r.nonfinite for r in records if r.nonfinite}, level)
    return cols["step"], blob, meta


def _decode(blob: np.ndarray, meta: dict, g: int, lnames: Sequence[str]
            ) -> dict[str, np.ndarray]:
    """The arrays `_encode` packed into `blob` (`lnames`: the layer statistics' names)."""
    n, layout, nstats = int(meta["rows"]), meta["layers"], len(lnames)
    width = sum(nstats + len(st) + len(le) for _, _, _, _, st, le in layout)
    bins = sum(h for _, _, _, h, _, _ in layout)
    ends = np.cumsum([0, *meta["parts"]])
    if ends[-1] != blob.size:
        raise ValueError(f"a history chunk holds {blob.size} bytes, its description "
                         f"{ends[-1]}")
    step_b, glob_b, values_b, flags_b, hist_b = (blob[a:b] for a, b in zip(ends, ends[1:]))
    flags = np.unpackbits(flags_b.reshape(n, -1), axis=-1, count=g + 1).astype(bool)
    values = _unpack(values_b, meta["dtype"], (n, width + 2 * len(layout)))
    hist = _unpack(hist_b, meta["hist"], (n, bins))
    coding = meta.get("coding", 0)
    if coding == 1:
        values = _code_values(values, layout, lnames, decode=True)
        hist = np.cumsum(_unzigzag(hist.astype(np.uint64)), axis=0)
    elif coding != 0:
        raise ValueError(f"a history chunk is coded as {cap(repr(coding), 40)}; this nnsim "
                         f"reads codings 0 and 1")
    return {"step": _unpack(step_b, "int64", (n, 1))[:, 0],
            "global": _unpack(glob_b, "float64", (n, g)), "none": flags[:, :g],
            "measured": flags[:, g], "values": values, "hist": hist}


def _merge(chunks: list, dtype: str, first: int | None = None) -> list:
    """Neighbouring chunks of one layout as one, compressed, without going back to records.
    With `first`, rows of steps before it (fallen out of the kept history) are dropped too.
    A chunk stored uncompressed (`_encode`'s level 0) is compressed even when alone."""
    out: list = []
    for step, blob, meta, last in chunks:
        if out and out[-1][2]["layers"] == meta["layers"]:
            out[-1][4].append((blob, meta))
            out[-1] = (np.concatenate([out[-1][0], step]), None, out[-1][2], last, out[-1][4])
        else:
            out.append((step, blob, meta, last, [(blob, meta)]))
    g = len(_GLOBAL_FLOATS)
    merged = []
    start = -1 if first is None else first
    for step, blob, meta, last, group in out:
        trim = int(step[0]) < start
        if len(group) > 1 or trim or meta.get("level", 1) == 0:
            parts = [_decode(np.frombuffer(b, np.uint8), m, g, _LAYER_FLOATS)
                     for b, m in group]
            cols = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
            if trim:
                keep = cols["step"] >= start
                cols = {k: v[keep] for k, v in cols.items()}
            nonfinite = {k: v for _, m in group for k, v in m["nonfinite"].items()
                         if int(k) >= start}
            blob, meta = _encode(cols, meta["layers"], dtype, nonfinite)
            step = cols["step"]
        merged.append((step, blob, meta, last))
    return merged


def _layers(layout: list, lnames: list, row: list, hist_row: list, ranges: list
            ) -> list[LayerRecord]:
    """One record's layers from its row of numbers (each layer's statistics, state norms and
    learnable means in turn), its histogram counts and its (low, high) histogram ranges."""
    layers, c, h = [], 0, 0
    for j, (index, kind, w, nh, state, learn) in enumerate(layout):
        stats = dict(zip(lnames, row[c:c + len(lnames)]))
        c += len(lnames)
        st = tuple(zip(state, row[c:c + len(state)]))
        c += len(state)
        le = tuple(zip(learn, row[c:c + len(learn)]))
        c += len(learn)
        layers.append(LayerRecord(index=index, kind=kind, width=w,
                                  hist=tuple(hist_row[h:h + nh]),
                                  hist_range=(ranges[2 * j], ranges[2 * j + 1]),
                                  state=st, learnable=le, **stats))
        h += nh
    return layers


def _unchunk(blob: np.ndarray, meta: dict, gnames: list, lnames: list) -> list[StepRecord]:
    n, layout, g = int(meta["rows"]), meta["layers"], len(gnames)
    width = sum(len(lnames) + len(st) + len(le) for _, _, _, _, st, le in layout)
    cols = _decode(blob, meta, g, lnames)
    steps, values, hist = cols["step"], cols["values"], cols["hist"]
    glob = cols["global"].tolist()
    flags = np.concatenate([cols["none"], cols["measured"][:, None]], axis=1)
    nonfinite = meta.get("nonfinite", {})
    vals, hists, flag_rows = values.tolist(), hist.tolist(), flags.tolist()
    records = []
    for i in range(n):
        row, f = vals[i], flag_rows[i]
        layers = _layers(layout, lnames, row, hists[i], row[width:]) if f[g] else []
        fields: dict[str, Any] = {name: (None if f[k] else glob[i][k])
                                  for k, name in enumerate(gnames)}
        step = int(steps[i])
        records.append(StepRecord(step=step, **fields, nonfinite=nonfinite.get(str(step)),
                                  layers=tuple(layers)))
    return records


def _signature(record: StepRecord) -> tuple:
    return tuple((x.index, x.kind, x.width, len(x.hist), *[n for n, _ in x.state], "|",
                  *[n for n, _ in x.learnable]) for x in record.layers)


def _runs(history: list[StepRecord]) -> list[tuple[list, list[StepRecord]]]:
    """`history` cut where the layer layout changes (unmeasured records join any run). The
    common case, one layout throughout, is recognised without a Python loop per record."""
    first = next((r for r in history if r.layers), None)
    if first is None:
        return [([], history)] if history else []
    layout = _layout(first)
    measured = [r for r in history if r.layers]
    if _uniform(list(_chain(map(_LAYERS, measured))), layout, len(measured)):
        return [(layout, history)]
    runs: list[tuple[list, list[StepRecord]]] = []
    sig: tuple | None = None
    for r in history:
        here = _signature(r) if r.layers else None
        if not runs or (here is not None and sig is not None and here != sig):
            runs.append((_layout(r), []))
            sig = here
        elif here is not None and sig is None:
            runs[-1] = (_layout(r), runs[-1][1])
            sig = here
        runs[-1][1].append(r)
    return runs


def encode_history(sim, history: Sequence[StepRecord], compact: bool = True,
                   parts: Path | None = None, durable: bool = True
                   ) -> tuple[dict[str, np.ndarray], set[str]]:
    """The kept records as compressed binary columns, in chunks (about 1 MB for 4,096
    records of the default network measured on every step, much less when steps go
    unmeasured), and the names of the files in `parts` they are in.

    A chunk written by an earlier save of the same simulation is reused as it is, so saving
    every N steps compresses only the N new records; `compact` merges the chunks of each
    layout into one and drops the rows that fell out of `history`. Without `parts` the
    chunks are bytes in the checkpoint; with it (periodic saves) they are appended to one
    file there and the checkpoint names it and where each chunk lies, so a save writes only
    its new records. Statistics are kept at the network's precision (float32 for the
    default network)."""
    history = list(history)
    dtype = str(getattr(getattr(sim, "config", None), "model", None) and sim.config.model.dtype
                or "float64")
    cache = getattr(sim, "_history_chunks", None)
    # (steps, arrays, description, the chunk's last record: the same object, not only the
    # same step, so a run rewound and stepped again never reuses the old timeline's rows)
    chunks: list[tuple[np.ndarray, bytes, dict, StepRecord]] = []
    done = 0
    if cache is not None and history and cache["dtype"] == dtype:
        first = history[0].step
        for step_col, blob, meta, last in cache["chunks"]:
            if step_col[-1] < first:
                continue  # fell out of the kept history
            # rows before `first` are dropped on load
            start = 0 if step_col[0] >= first else int(np.searchsorted(step_col, first))
            end = done + len(step_col) - start
            if end > len(history) or history[end - 1] is not last:
                chunks, done = [], 0  # not the history cached (a rewind, a new run)
                break
            chunks.append((step_col, blob, meta, last))
            done = end
    # a periodic save stores its new records uncompressed; the final save compresses
    level = 1 if compact or parts is None else 0
    new = history[done:]
    counts = _counted(sim, new)
    runs = [(_layout(next(r for r in new if r.layers)), new)] if counts is not None \
        else _runs(new)
    for layout, records in runs:
        chunks.append((*_chunk(records, layout, dtype, level, counts), records[-1]))
    if compact and chunks:  # (a lone compressed chunk with only kept rows stays as it is)
        chunks = _merge(chunks, dtype, history[0].step)
    elif len(chunks) > MAX_CHUNKS:  # many small chunks compress less: merge, once in a while
        chunks = _merge(chunks, dtype)
    # each chunk's description as JSON, written once: (the description itself, its text)
    # by id, the description held so that its id stays its own
    texts = cache.get("texts", {}) if cache is not None else {}
    described = {}
    for _, _, meta, _ in chunks:
        hit = texts.get(id(meta))
        described[id(meta)] = hit if hit is not None and hit[0] is meta else \
            (meta, json.dumps(meta))
    appended = None  # a final save removes the parts: the next periodic one begins afresh
    if parts is not None and chunks:
        appended = _append_chunks(parts, chunks, cache.get("file") if cache else None,
                                  durable)
    try:
        sim._history_chunks = {"dtype": dtype, "chunks": chunks, "texts": described,
                               "file": appended}
    except AttributeError:
        pass
    head = json.dumps({"global": list(_GLOBAL_FLOATS), "layer": list(_LAYER_FLOATS),
                       "first": history[0].step if history else 0})
    info = head[:-1] + ', "chunks": [' + ", ".join(
        described[id(meta)][1] for _, _, meta, _ in chunks) + "]"
    if parts is not None and appended is not None:
        _, name, where = appended
        info += (f', "file": "{name}", "offsets": '
                 f'{json.dumps([where[id(blob)][1] for _, blob, _, _ in chunks])}}}')
        return {"history/chunks": np.array(info)}, {name}
    return {"history/blob": np.frombuffer(b"".join(blob for _, blob, _, _ in chunks), np.uint8),
            "history/chunks": np.array(info + "}")}, set()


def _append_chunks(parts: Path, chunks: list, appended: tuple | None, durable: bool) -> tuple:
    """Append to the history file in `parts` the chunks it does not hold yet; returns
    (folder, file name, {id(chunk bytes): (the bytes, offset)}). A new file is begun when
    there is none in `parts` yet, or when most of the old one is chunks no longer kept."""
    where: dict[int, tuple[bytes, int]] = {}
    name = None
    if appended is not None and appended[0] == str(parts) and (parts / appended[1]).exists():
        _, name, held = appended
        where = {id(blob): held[id(blob)] for _, blob, _, _ in chunks
                 if id(blob) in held and held[id(blob)][0] is blob}
        live = sum(len(blob) for blob, _ in where.values())
        dead = sum(len(blob) for blob, _ in held.values()) - live
        if dead > max(live, 2**20):
            name, where = None, {}  # start afresh: the old file goes at the next tidy
    if name is None:
        name = f"history-{uuid.uuid4().hex[:8]}.bin"
    new = [blob for _, blob, _, _ in chunks if id(blob) not in where]
    if new:  # (a new file: every chunk is new)
        parts.mkdir(exist_ok=True)
        with open(parts / name, "ab") as f:
            at = f.tell()  # the file's true end, whatever an earlier failed write left
            for blob in new:
                f.write(blob)
                where[id(blob)] = (blob, at)
                at += len(blob)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    return str(parts), name, where


def decode_history(data: dict[str, np.ndarray], parts: Path | None = None
                   ) -> list[StepRecord]:
    """The records stored by `encode_history` (or by earlier versions: one set of columns,
    or JSON); `parts` is the folder of a checkpoint's parts (`parts_path`)."""
    if "history/chunks" in data:
        info = json.loads(str(data["history/chunks"]))
        gnames, lnames, first = info["global"], info["layer"], int(info["first"])
        records: list[StepRecord] = []
        if "file" in info:
            name, offsets = info["file"], info["offsets"]
            if not isinstance(name, str) or not _HISTORY_PART.fullmatch(name) or parts is None:
                raise ValueError(f"the history file {cap(repr(name), 80)} is not one a "
                                 f"checkpoint writes")
            if not isinstance(offsets, list) or len(offsets) != len(info["chunks"]):
                raise ValueError("the history needs one offset per chunk")
            blob = _read_part(parts, name)
        else:
            blob, offsets = data["history/blob"], None
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError(f"history/blob must be bytes, got {blob.dtype} {blob.shape}")
        at = 0
        for i, meta in enumerate(info["chunks"]):
            size = int(sum(meta["parts"]))
            if offsets is not None:
                at = offsets[i]
                if not isinstance(at, int) or not 0 <= at <= blob.size - size:
                    raise ValueError(f"history chunk {i} lies outside its file (a copy of "
                                     f"the parts folder older than the checkpoint file?)")
            records.extend(r for r in _unchunk(blob[at:at + size], meta, gnames, lnames)
                           if r.step >= first)
            at += size
        return records
    if "history/layout" not in data:
        return [record_from_dict(d) for d in json.loads(str(data["history"]))]
    return _decode_columns(data)


def _decode_columns(data: dict[str, np.ndarray]) -> list[StepRecord]:
    """Histories of the first binary format: one set of float64 columns."""
    meta = json.loads(str(data["history/layout"]))
    layout, gnames, lnames = meta["layers"], meta["global"], meta["layer"]
    steps = data["history/step"]
    n = len(steps)
    if n == 0:
        return []
    glob = data["history/global"].reshape(n, len(gnames))
    none = np.unpackbits(data["history/none"], axis=-1, count=len(gnames)).reshape(
        n, len(gnames)).astype(bool)
    width = sum(len(lnames) + len(st) + len(le) for _, _, _, _, st, le in layout)
    cols = data["history/layers"].reshape(n, width)
    hist = data["history/hist"].reshape(n, sum(h for _, _, _, h, _, _ in layout))
    ranges = data["history/hist_range"]
    if ranges.ndim != 2 or ranges.shape[1] != 2 * len(layout):
        raise ValueError(f"history/hist_range has shape {ranges.shape}")
    if len(ranges) == 1 and n > 1:  # the same ranges on every row, stored once
        ranges = np.repeat(ranges, n, axis=0)
    nonfinite = meta.get("nonfinite", {})
    glob_list, none_list = glob.tolist(), none.tolist()
    cols_list, hist_list, range_list = cols.tolist(), hist.tolist(), ranges.tolist()
    records = []
    for i in range(n):
        row, hrow, rrow = cols_list[i], hist_list[i], range_list[i]
        layers = _layers(layout, lnames, row, hrow, rrow)
        g: dict[str, Any] = {name: (None if none_list[i][k] else glob_list[i][k])
                             for k, name in enumerate(gnames)}
        records.append(StepRecord(step=int(steps[i]), **g, nonfinite=nonfinite.get(str(i)),
                                  layers=tuple(layers)))
    return records


def _num(x: float) -> Any:
    return x if math.isfinite(x) else str(x)


def _float(x: Any) -> float:
    return float(x)  # "inf" and "nan" parse too


def _saved_config(path: Path, text: str, registry) -> Config:
    """The config a checkpoint was saved with; one that names a component this nnsim does
    not have says which and that the checkpoint needs it."""
    try:
        return Config.from_dict(read_toml_text(text, str(path)), registry)
    except ConfigError as exc:
        if "unknown " not in exc.message:
            raise
        raise CheckpointError(f"{path}: was saved with a component that is not installed "
                              f"here ({exc}); install the plugin that provides it") from None


def load(where: str | Path, registry=None):
    """Rebuild the Simulation saved at `where`; returns (simulation, history records)."""
    from nnsim.engine.simulation import Divergence, Simulation

    path = checkpoint_path(where)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except Exception as exc:  # noqa: BLE001 — whatever a damaged zip or .npy header raises
        # (MemoryError: a shape larger than any memory; NotImplementedError: an unknown zip
        # version or compression; SyntaxError: a header that is not a Python literal)
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if data.get("format") is None or str(data["format"]) != FORMAT:
        raise CheckpointError(f"{path}: not an nnsim checkpoint")
    version = data.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: damaged checkpoint (version must be an integer, got "
                              f"{cap(repr(version), 80)})")
    if int(version) not in READS:
        raise CheckpointError(f"{path}: checkpoint version {int(version)}; this nnsim "
                              f"reads versions {READS[0]} to {READS[-1]}")
    try:
        info = json.loads(str(data["sim"]))
        if not isinstance(info, dict):
            raise TypeError(f"sim must be a table, got {type(info).__name__}")
        for key in ("step", "evals_since_best", "best_step"):
            if isinstance(info.get(key), bool) or not isinstance(info.get(key), int) \
                    or not 0 <= info[key] < MAX_STEP:
                raise TypeError(f"{key} must be an integer in [0, 2**62), got "
                                f"{cap(repr(info.get(key)), 80)}")
        if not isinstance(info.get("telemetry", True), bool):
            raise TypeError(f"telemetry must be true or false, got "
                            f"{cap(repr(info['telemetry']), 80)}")
        config = _saved_config(path, str(data["config"]), registry)
        sim = Simulation(config, registry, telemetry=info.get("telemetry", True))
        _restore(sim, data)
        history = decode_history(data, _parts_to_read(path))
        sim.step_count = info["step"]
        sim.best_val = _float(info["best_val"])
        sim.evals_since_best = info["evals_since_best"]
        sim.best_step = info["best_step"]
        stopped = info["stopped"]
        if stopped is not None and not isinstance(stopped, str):
            raise TypeError(f"stopped must be text, got {cap(repr(stopped), 80)}")
        sim.stopped = stopped
        if info["divergence"] is not None:
            step, where_ = info["divergence"]
            if not isinstance(step, int) or not isinstance(where_, str):
                raise TypeError("divergence must be [step, where]")
            sim.divergence = Divergence(step, where_)
    except NnsimError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, MemoryError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: "
                              f"{cap(str(exc), 200)})") from None
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
    if order.shape != sim.data._order.shape or order.dtype.kind not in "iu" or not \
            np.array_equal(np.sort(order), np.arange(len(order))):
        raise ValueError(f"the data order must be a permutation of the {sim.data.n_train} "
                         f"training examples")
    sim.data._order = order.astype(np.int64)
    info = json.loads(str(data["data"]))
    pos, seen = int(info["pos"]), int(info["seen"])
    if not 0 <= pos <= sim.data.n_train or seen < 0:
        raise ValueError(f"the data position must be in [0, {sim.data.n_train}], got {pos}")
    sim.data._pos, sim.data.examples_seen = pos, seen
    states = json.loads(str(data["rng"]))
    for name, rng in sim.rngs.items():
        rng.bit_generator.state = states[name]


def _value(x: Any) -> Any:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    return x


def record_from_dict(d: dict[str, Any]) -> StepRecord:
    """The inverse of StepRecord.to_dict (older files hold "nan" strings instead)."""
    if "nonfinite_values" in d:
        d = restore_nonfinite({**d, "layers": [dict(layer) for layer in d["layers"]]})
    layers = []
    for ld in d["layers"]:
        fixed = {name: ld[name] for name in LayerRecord._fields if name in ld}
        fixed["hist"] = tuple(ld["hist"])
        fixed["hist_range"] = tuple(ld["hist_range"])
        for name in LAYER_SCALARS:
            fixed[name] = _value(fixed[name])
        extra = [k for k in ld if k not in LayerRecord._fields]
        fixed["state"] = tuple((k[:-5], _value(ld[k])) for k in extra if k.endswith("_norm"))
        fixed["learnable"] = tuple((k[:-5], _value(ld[k])) for k in extra if k.endswith("_mean"))
        layers.append(LayerRecord(**fixed))
    fields = {name: _value(d[name]) for name in StepRecord._fields if name != "layers"}
    return StepRecord(**fields, layers=tuple(layers))


# ---------------------------------------------------------------- kept snapshots

def _smallest(order: np.ndarray) -> np.ndarray:
    """A data order (indices of the training examples) in the smallest unsigned integers
    that hold it: 2 bytes an example instead of 8 below 65,536 examples."""
    top = int(order.max(initial=0))
    for dtype in (np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max and order.min(initial=0) >= 0:
            return order.astype(dtype)
    return order


def _utf8(value: Any) -> np.ndarray:
    """JSON as UTF-8 bytes (a snapshot's description: a quarter of NumPy's 4 bytes a
    character)."""
    return np.frombuffer(json.dumps(value).encode(), np.uint8)


def _json_of(array: np.ndarray) -> Any:
    """What `_utf8` (or, in snapshots of earlier versions, `_text`) stored."""
    if array.dtype == np.uint8:
        return json.loads(array.tobytes().decode())
    return json.loads(str(array))


def _snapshot_arrays(snap) -> dict[str, np.ndarray]:
    order, pos, seen, _ = snap.data
    c = snap.counters
    arrays = {"params": snap.params, "data_order": _smallest(order),
              "meta": _utf8({
                  "pos": pos, "seen": seen, "rngs": snap.rngs, "primed": snap.primed,
                  "config": snap.config.to_toml(), "step": c["step"],
                  "best_val": _num(c["best_val"]), "evals_since_best": c["evals_since_best"],
                  "best_step": c["best_step"], "stopped": c["stopped"],
                  "divergence": None if c["divergence"] is None else
                  [c["divergence"].step, c["divergence"].where]})}
    for key, value in snap.buffers.items():
        arrays[f"buffer/{key}"] = value
    for key, value in snap.opt_state.items():
        arrays[f"state/{key}"] = value
    if snap.inactive_run is not None:
        arrays["inactive_run"] = snap.inactive_run
    return arrays


#: the name of a file in a checkpoint's parts folder: a kept snapshot's bytes
_PART = re.compile(r"snapshot-[0-9]+-[0-9a-f]{8}\.bin")
#: … and the history's bytes
_HISTORY_PART = re.compile(r"history-[0-9a-f]{8}\.bin")


def _snapshot_bundle(sim, store, parts: Path | None = None, durable: bool = True
                     ) -> tuple[dict[str, np.ndarray], set[str]]:
    """The kept snapshots: their bytes and an index (name → offset, dtype, shape), and the
    names of the files in `parts` that the index refers to.

    Without `parts`, all snapshots are one byte array in the checkpoint. With it (periodic
    saves), each snapshot is written once to its own file in `parts` and later saves only
    name it, so a save costs the same however many snapshots are kept. Each snapshot's
    bytes are made once and reused by every later save."""
    cache = getattr(sim, "_snapshot_bytes", {})
    fresh: dict[int, tuple] = {}
    with store._lock:
        kept = dict(store.snapshots)
    for step, snap in sorted(kept.items()):
        hit = cache.get(step)
        if hit is None or hit[0] is not snap:
            raw: list[bytes] = []
            names: dict[str, list] = {}
            for name, value in _snapshot_arrays(snap).items():
                array = np.asarray(value, order="C")  # (ascontiguousarray makes 0-d 1-d)
                names[name] = [sum(map(len, raw)), array.dtype.str, list(array.shape)]
                raw.append(array.tobytes())
            hit = (snap, b"".join(raw), names, None)
        if parts is not None and (hit[3] is None or hit[3][0] != str(parts)):
            file = f"snapshot-{step}-{uuid.uuid4().hex[:8]}.bin"
            parts.mkdir(exist_ok=True)
            with open(parts / file, "wb") as f:
                f.write(hit[1])
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            # (the folder, the file, the index entry as JSON: written once)
            hit = (*hit[:3], (str(parts), file, json.dumps([0, hit[2], file])))
        elif parts is None:
            hit = (*hit[:3], None)  # the final save takes it back and removes the file
        fresh[step] = hit
    try:
        sim._snapshot_bytes = fresh
    except AttributeError:
        pass
    index: dict[str, list] = {}
    if parts is not None:
        text = ", ".join(f'"{step}": {entry}' for step, (*_, (_, _, entry)) in fresh.items())
        return ({"snapshots/index": np.array("{" + text + "}")},
                {file for *_, (_, file, _) in fresh.values()})
    at = 0
    for step, (_, raw_bytes, arrays, _) in fresh.items():
        index[str(step)] = [at, arrays]
        at += len(raw_bytes)
    return {"snapshots/blob": np.frombuffer(b"".join(h[1] for h in fresh.values()), np.uint8),
            "snapshots/index": _text(index)}, set()


def _from_bundle(blob: np.ndarray, start: int, names: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, (offset, dtype, shape) in names.items():
        dt = np.dtype(dtype)
        if dt.hasobject:
            raise ValueError(f"{name}: objects are not stored in checkpoints")
        if any(int(n) < 0 for n in shape):
            raise ValueError(f"{name} declares the shape {cap(repr(shape), 80)}, with a "
                             f"negative size")
        count = int(np.prod(shape, dtype=np.int64))
        begin = start + int(offset)
        if begin < 0 or begin + count * dt.itemsize > blob.size:
            raise ValueError(f"{name} lies outside the snapshot bytes")
        out[name] = blob[begin:begin + count * dt.itemsize].view(dt).reshape(shape).copy()
    return out


def _snapshot_index(path: Path) -> tuple[dict, Any]:
    """The index of the snapshots in the file at `path` and a reader of their arrays."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = npz.files
            if "snapshots/index" in names:
                return json.loads(str(npz["snapshots/index"])), None
    except Exception as exc:  # noqa: BLE001 — whatever a damaged zip raises (see `load`)
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") \
            from None
    # files of the first format: five entries per snapshot, "snap/<step>/<name>"
    return {n.split("/")[1]: None for n in names
            if n.startswith("snap/") and n.endswith("/meta")}, None


def snapshot_steps(where: str | Path) -> list[int]:
    """The steps of the snapshots kept in the checkpoint at `where`."""
    index, _ = _snapshot_index(checkpoint_path(where))
    return sorted(int(step) for step in index)


def load_snapshot(where: str | Path, step: int, registry=None):
    """The snapshot kept at `step` in the checkpoint at `where` (see nnsim.engine.rewind)."""
    path = checkpoint_path(where)
    index, _ = _snapshot_index(path)
    kept = sorted(int(k) for k in index)
    if step not in kept:
        shown = ", ".join(map(str, kept[:20])) + (" …" if len(kept) > 20 else "")
        raise CheckpointError(f"{path}: no snapshot at step {step}; kept: "
                              + (shown or "none (a run with --checkpoint keeps one every "
                                          "--snapshot-every steps, 100 unless given)"))
    return _load_snapshots(path, index, [step], registry)[step]


def load_snapshots(where: str | Path, last: int | None = None, registry=None) -> dict:
    """Every snapshot kept in the checkpoint at `where` (up to step `last`), by step."""
    path = checkpoint_path(where)
    index, _ = _snapshot_index(path)
    steps = sorted(int(k) for k in index if last is None or int(k) <= last)
    return _load_snapshots(path, index, steps, registry) if steps else {}


def _load_snapshots(path: Path, index: dict, steps: list[int], registry) -> dict:
    from nnsim.engine.rewind import Snapshot
    from nnsim.engine.simulation import Divergence

    out = {}
    step = steps[0]
    try:
        with np.load(path, allow_pickle=False) as npz:
            blob = npz["snapshots/blob"] if "snapshots/blob" in npz.files else None
            for step in steps:
                entry = index[str(step)]
                if entry is None:
                    head = f"snap/{step}/"
                    data = {k[len(head):]: npz[k] for k in npz.files if k.startswith(head)}
                elif isinstance(entry, list) and len(entry) == 3:  # a file in the parts
                    if not isinstance(entry[2], str) or not _PART.fullmatch(entry[2]):
                        raise ValueError(f"its file name {cap(repr(entry[2]), 80)} is not one "
                                         f"a checkpoint writes")
                    raw = _read_part(_parts_to_read(path), entry[2])
                    data = _from_bundle(raw, int(entry[0]), entry[1])
                else:
                    if blob is None or not isinstance(entry, list) or len(entry) != 2:
                        raise ValueError("its index entry must be [offset, arrays]")
                    data = _from_bundle(blob, int(entry[0]), entry[1])
                meta = _json_of(data["meta"])
                config = _saved_config(path, meta["config"], registry)
                div = meta["divergence"]
                counters = {"step": int(meta["step"]), "best_val": _float(meta["best_val"]),
                            "evals_since_best": int(meta["evals_since_best"]),
                            "best_step": int(meta["best_step"]), "stopped": meta["stopped"],
                            "divergence": None if div is None else Divergence(*div)}
                buffers = {k[len("buffer/"):]: v for k, v in data.items()
                           if k.startswith("buffer/")}
                state = {k[len("state/"):]: v for k, v in data.items()
                         if k.startswith("state/")}
                out[step] = Snapshot(step, data["params"], buffers, state,
                                     (data["data_order"].astype(np.int64), int(meta["pos"]),
                                      int(meta["seen"]), 0.0), meta["rngs"], counters,
                                     data.get("inactive_run"), bool(meta["primed"]), None,
                                     config)
    except NnsimError:
        raise
    except Exception as exc:  # noqa: BLE001 — a damaged part, whatever it raises
        raise CheckpointError(f"{path}: damaged snapshot at step {step} ({type(exc).__name__}: "
                              f"{cap(str(exc), 200)})") from None
    return out
