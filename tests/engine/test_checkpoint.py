"""Checkpoints: a resumed run is the uninterrupted run, and bad files say so."""

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsim.engine import Simulation
from nnsim.engine import checkpoint
from nnsim.engine.checkpoint import _LAYER_FLOATS as LAYER_FLOATS
from nnsim.engine.checkpoint import CheckpointError, load, save
from nnsim.engine.writers import read_records
from tests.helpers import small_config

RICH = small_config(("model.dropout", 0.2), ("data.augment", 0.1),
                    ("model.normalizer", "batchnorm"), ("optimizer.name", "adam"),
                    ("optimizer.lr", 0.01), ("train.eval_every", 7),
                    ("train.early_stopping", 50), ("model.dtype", "float32"))


def dumps(records):
    return [json.dumps(r.to_dict()) for r in records]


def kept(records, dtype="float32"):
    """`records` as a checkpoint keeps them: layer statistics at the network's precision
    (`dtype`), everything else exactly."""
    cast = np.dtype(dtype).type

    def f(x):
        return float(cast(x))

    def layer(lr):
        return lr._replace(**{n: f(getattr(lr, n)) for n in LAYER_FLOATS},
                           hist_range=tuple(map(f, lr.hist_range)),
                           state=tuple((n, f(v)) for n, v in lr.state),
                           learnable=tuple((n, f(v)) for n, v in lr.learnable))

    return dumps([r._replace(layers=tuple(map(layer, r.layers))) for r in records])


@pytest.mark.parametrize("config", [RICH, small_config()], ids=["rich", "plain"])
def test_a_resumed_run_is_identical_to_an_uninterrupted_one(tmp_path, config):
    straight = dumps(Simulation(config).run(40))
    first = Simulation(config)
    head = first.run(17)
    path = save(first, tmp_path, head)
    resumed, history = load(path)
    assert dumps(history) == kept(head, config.model.dtype)
    assert resumed.step_count == 17
    assert dumps(head) + dumps(resumed.run(23)) == straight


def test_checkpoint_holds_the_state_that_matters(tmp_path):
    sim = Simulation(RICH)
    sim.run(9)
    again, _ = load(save(sim, tmp_path / "x.npz"))
    assert np.array_equal(again.net.params, sim.net.params)
    for key, value in sim.opt_state.items():
        assert np.array_equal(again.opt_state[key], value)
    for key, value in sim.net.buffers().items():
        assert np.array_equal(again.net.buffers()[key], value)
    assert again.config == sim.config


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an nnsim checkpoint"):
        load(tmp_path / "foreign.npz")


def _save_forever(folder: str, apart: bool) -> None:
    from nnsim.engine.rewind import SnapshotStore

    sim = Simulation(small_config(("model.hidden", [512, 512])))
    store, history = SnapshotStore(interval=2), []
    while True:
        history = (history + [sim.step()])[-50:]
        store.keep(sim)
        save(sim, folder, history, snapshots=store, compact=not apart, durable=not apart)


@pytest.mark.parametrize("apart", [False, True], ids=["whole", "apart"])
def test_a_kill_during_saves_leaves_a_loadable_checkpoint(tmp_path, apart):
    folder = str(tmp_path)
    save(Simulation(small_config(("model.hidden", [512, 512]))), folder)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_save_forever, args=(folder, apart))
    proc.start()
    time.sleep(3.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    sim, history = load(folder)  # whatever moment the kill hit, the last complete save loads
    assert sim.step_count > 0  # the kill came after saves that landed
    assert history[-1].step == sim.step_count
    kept = checkpoint.load_snapshots(folder)  # every snapshot it names is whole
    assert kept and all(snap.step == step <= sim.step_count for step, snap in kept.items())


# ---------------------------------------------------------------- compact history, crafted files

def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    data.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **data)


def test_history_is_stored_compressed_at_the_networks_precision(tmp_path):
    from nnsim.config import load as load_config

    sim = Simulation(load_config())  # the default network, float32
    records = sim.run(4096)  # measured on every step: the largest history a run keeps
    path = save(sim, tmp_path, records)
    size = path.stat().st_size
    # 4,096 records were 39-53 MB as JSON and 3.3 MB as float64 columns
    assert size < 1_300_000, size
    with np.load(path) as npz:
        assert "history/blob" in npz.files and "history" not in npz.files
    back = load(tmp_path)[1]
    assert dumps(back) == kept(records)
    assert dumps(back) != dumps(records)  # float64 statistics were rounded, not kept whole


def test_a_float64_network_keeps_its_statistics_whole(tmp_path):
    sim = Simulation(small_config(("model.dtype", "float64")))
    records = sim.run(30)
    save(sim, tmp_path, records)
    assert dumps(load(tmp_path)[1]) == dumps(records)


def test_unmeasured_steps_and_a_changed_network_share_one_history(tmp_path):
    sim = Simulation(small_config(("model.dtype", "float64")))
    records = list(sim.steps(30, every=7))  # only every 7th step has layer statistics
    assert [r.step for r in records if r.layers] == [7, 14, 21, 28, 30]
    other = Simulation(small_config(("model.dtype", "float64"), ("model.hidden", [5, 6, 7])))
    mixed = records + [r._replace(step=r.step + 30) for r in other.run(10)]
    sim2 = Simulation(small_config(("model.dtype", "float64")))
    save(sim2, tmp_path, mixed)
    with np.load(checkpoint.checkpoint_path(tmp_path)) as npz:
        assert len(json.loads(str(npz["history/chunks"]))["chunks"]) == 2  # one per layout
    assert dumps(load(tmp_path)[1]) == dumps(mixed)


def test_layouts_of_one_shape_but_other_state_or_learnable_names_are_kept_apart(tmp_path):
    # same widths: only the optimizer's state names (velocity; m, v) or the learnable
    # parameters (batch norm's gamma, beta) tell the layouts apart, and A comes back after B
    def run(*pairs):
        sim = Simulation(small_config(("model.dtype", "float64"), *pairs))
        return sim.run(5)

    a, b = run(), run(("optimizer.name", "adam"))
    c = run(("model.normalizer", "batchnorm"))
    mixed = [r._replace(step=i + 1) for i, r in enumerate(a + b + a + c + c[:2])]
    save(Simulation(small_config(("model.dtype", "float64"))), tmp_path, mixed)
    with np.load(checkpoint.checkpoint_path(tmp_path)) as npz:
        chunks = json.loads(str(npz["history/chunks"]))["chunks"]
    assert [m["rows"] for m in chunks] == [5, 5, 5, 7]
    assert dumps(load(tmp_path)[1]) == dumps(mixed)


def test_an_old_checkpoint_with_float64_columns_still_loads():
    here = Path(__file__).parent / "data"
    _, history = load(here / "columns-v1.npz")
    assert [json.loads(line) for line in dumps(history)] == json.loads(
        (here / "columns-v1.json").read_text())


def test_non_finite_and_missing_values_survive_the_columns(tmp_path):
    sim = Simulation(small_config(("optimizer.name", "sgd"), ("optimizer.lr", 10.0),
                                  ("model.activation", "relu"),
                                  ("data.name", "teacher"), ("data.task", "regression")))
    records = sim.run(3000)  # stops at the divergence
    assert records[-1].nonfinite and records[0].accuracy is None
    save(sim, tmp_path, records)
    assert dumps(load(tmp_path)[1]) == dumps(records)


def test_saving_every_n_steps_reuses_the_encoded_rows_and_stays_exact(tmp_path):
    sim, window = Simulation(RICH), []
    chunks = []
    for _ in range(4):
        window = (window + sim.run(25))[-60:]  # a window that slides, like the kept history
        save(sim, tmp_path, window, durable=False, compact=False)
        assert dumps(load(tmp_path)[1]) == kept(window)
        chunks.append([c[1] for c in sim._history_chunks["chunks"]])
    # each save compressed only its 25 new records: the older chunks are the same objects
    assert chunks[1][0] is chunks[0][0] and chunks[3][-2] is chunks[2][-1]
    assert all(len(c) <= 3 for c in chunks)  # chunks that left the window were dropped


def test_many_saves_merge_their_chunks(tmp_path):
    sim, window = Simulation(small_config()), []
    counts = []
    for _ in range(checkpoint.MAX_CHUNKS + 3):
        window = (window + sim.run(2))[-500:]
        save(sim, tmp_path, window, durable=False, compact=False)
        counts.append(len(sim._history_chunks["chunks"]))
    assert max(counts) == checkpoint.MAX_CHUNKS and counts[checkpoint.MAX_CHUNKS] == 1
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)


def blob_size(where) -> int:
    """The bytes of the kept history: in the checkpoint, or named by it in its parts."""
    with np.load(checkpoint.checkpoint_path(where)) as npz:
        if "history/blob" in npz.files:
            return int(npz["history/blob"].size)
        info = json.loads(str(npz["history/chunks"]))
    return sum(sum(meta["parts"]) for meta in info["chunks"])


def test_periodic_saves_append_the_new_records_and_survive_a_torn_append(tmp_path):
    sim, window = Simulation(small_config()), []
    window = sim.run(40)
    path = save(sim, tmp_path, window, durable=False, compact=False)
    (file,) = checkpoint.parts_path(path).glob("history-*.bin")
    before, small = file.stat().st_size, path.stat().st_size
    window += sim.run(40)
    save(sim, tmp_path, window, durable=False, compact=False)
    grown = file.stat().st_size - before
    assert 0 < grown < 1.5 * before  # only the 40 new records were written
    assert path.stat().st_size - small < grown / 4  # the checkpoint only describes them
    with open(file, "ab") as f:  # a save killed while appending
        f.write(b"\x00" * 1000)
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)
    window += sim.run(40)  # the next save appends after what the torn write left
    save(sim, tmp_path, window, durable=False, compact=False)
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)
    save(sim, tmp_path, window)  # the final save: one file, no folder
    assert not checkpoint.parts_path(path).exists()
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)


def test_periodic_saves_store_records_as_they_are_and_the_final_save_compresses_them(tmp_path):
    sim = Simulation(small_config())
    window = sim.run(100)
    save(sim, tmp_path, window, durable=False, compact=False)
    ((_, raw, meta, _),) = sim._history_chunks["chunks"]
    assert meta["level"] == 0  # zlib's format, stored: a periodic save does not compress
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)
    save(sim, tmp_path, window)  # the final save: the same one chunk, compressed
    ((_, packed, meta, _),) = sim._history_chunks["chunks"]
    assert meta["level"] == 1 and len(packed) < 0.8 * len(raw)
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)


@pytest.mark.parametrize("limit, in_memory", [(checkpoint.IN_MEMORY, True), (0, False)])
def test_a_checkpoint_is_made_in_memory_only_when_small(tmp_path, monkeypatch, limit,
                                                          in_memory):
    """A small checkpoint is made in memory (`npz_bytes`) and written in one call; a large
    one is streamed to the file by `np.savez`, so a big network is never held twice in
    memory. Either loads back the same."""
    made = []
    savez, direct = np.savez, checkpoint.npz_bytes
    monkeypatch.setattr(checkpoint, "IN_MEMORY", limit)
    monkeypatch.setattr(checkpoint.np, "savez",
                        lambda f, **arrays: (made.append("savez"), savez(f, **arrays))[1])
    monkeypatch.setattr(checkpoint, "npz_bytes",
                        lambda arrays: (made.append("memory"), direct(arrays))[1])
    sim = Simulation(small_config())
    window = sim.run(30)
    save(sim, tmp_path, window)
    assert made == (["memory"] if in_memory else ["savez"])
    loaded, history = load(tmp_path)
    assert dumps(history) == kept(window, sim.config.model.dtype)
    assert np.array_equal(loaded.net.params, sim.net.params)


_DTYPES = ["float32", "float64", "int64", "uint8", "uint16", "bool", "<U7", ">f8", "complex64"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_DTYPES),
                          st.lists(st.integers(0, 5), min_size=0, max_size=3),
                          st.sampled_from(["C", "F", "strided"])),
                min_size=1, max_size=6),
       st.integers(0, 2**32 - 1))
def test_npz_bytes_is_a_file_np_load_and_zipfile_read_back(specs, seed):
    """What `npz_bytes` makes reads back with `np.load` as the same arrays (dtype, shape,
    values, any memory order in), and zipfile finds every entry's checksum right."""
    import io
    import zipfile

    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (dtype, shape, order) in enumerate(specs):
        a = (rng.standard_normal(shape) * 100).astype(dtype) if dtype != "<U7" else \
            np.array(rng.choice(["", "a", "ünï", "config"], size=shape), dtype=dtype)
        if order == "F":
            a = np.asfortranarray(a)
        elif order == "strided" and a.ndim:
            a = a[::2]
        arrays[f"part/{i}" + ("" if i % 2 else "/μ-ünï")] = a  # names from plugins
    blob = checkpoint.npz_bytes(arrays)
    assert zipfile.ZipFile(io.BytesIO(blob)).testzip() is None
    savez = io.BytesIO()
    np.savez(savez, **arrays)  # the entries are named as np.savez names them
    assert zipfile.ZipFile(io.BytesIO(blob)).namelist() == zipfile.ZipFile(savez).namelist()
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        assert npz.files == list(arrays)
        for name, a in arrays.items():
            back = npz[name]
            assert back.dtype == a.dtype and back.shape == a.shape
            assert np.array_equal(back, a, equal_nan=a.dtype.kind in "fc")


def test_npz_bytes_refuses_object_arrays():
    with pytest.raises(TypeError, match="object arrays"):
        checkpoint.npz_bytes({"x": np.array([{"a": 1}], dtype=object)})


def test_the_final_save_compacts_the_periodic_saves_chunks(tmp_path):
    sim, window = Simulation(small_config()), []
    for _ in range(12):  # periodic saves: one small chunk each, old rows left in place
        window = (window + sim.run(25))[-190:]
        save(sim, tmp_path, window, durable=False, compact=False)
    periodic = blob_size(tmp_path)
    steps = [c[0] for c in sim._history_chunks["chunks"]]
    assert len(steps) == 8 and steps[0][0] < window[0].step
    save(sim, tmp_path, window)
    (chunk,) = sim._history_chunks["chunks"]  # one, holding the kept rows only
    assert chunk[0].tolist() == [r.step for r in window]
    assert blob_size(tmp_path) < periodic
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)
    window = window[50:] + sim.run(25)  # and periodic saves go on from the compact chunk
    save(sim, tmp_path, window, durable=False, compact=False)
    assert sim._history_chunks["chunks"][0][1] is chunk[1]
    assert dumps(load(tmp_path)[1]) == kept(window, sim.config.model.dtype)


def test_a_rewound_run_never_reuses_the_old_timelines_rows(tmp_path):
    from nnsim.engine.rewind import restore, take

    sim = Simulation(small_config(("model.dtype", "float64")))
    head = sim.run(10)
    snap = take(sim)
    tail = sim.run(10)
    save(sim, tmp_path, head + tail)
    restore(sim, snap)
    sim.set_hyper("lr", sim.lr * 3)
    again = sim.run(10)  # the same steps 11-20, other records
    assert [r.step for r in again] == [r.step for r in tail] and dumps(again) != dumps(tail)
    save(sim, tmp_path, head + again)
    assert dumps(load(tmp_path)[1]) == dumps(head + again)


def test_a_run_without_telemetry_resumes_without_it(tmp_path, capsys):
    from nnsim.cli import main

    small = ["--set", "data.samples=200", "--set", "model.hidden=[8]"]
    assert main(["run", *small, "--steps", "3", "--no-telemetry", "--checkpoint",
                 str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(tmp_path), "--steps", "2"]) == 0
    out = read_records(capsys.readouterr().out.splitlines())
    assert [len(r["layers"]) for r in out] == [0, 0]


def test_two_writers_never_share_a_temporary_file(tmp_path, monkeypatch):
    names = []
    real = os.replace

    def spy(src, dst):
        names.append(os.path.basename(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    sim = Simulation(small_config())
    save(sim, tmp_path)
    save(sim, tmp_path)
    assert len(set(names)) == 2 and all(str(os.getpid()) in n for n in names)


@pytest.mark.parametrize("change,needle", [
    ({"version": np.array("one")}, "version must be an integer"),
    ({"version": np.array(1.5)}, "version must be an integer"),
    ({"data_order": np.arange(10**6, 10**6 + 192)}, "permutation of the 192"),
    ({"data_order": np.zeros(192, np.int64)}, "permutation of the 192"),
    ({"sim": np.array(json.dumps({"step": "12"}))}, "step must be an integer"),
    ({"sim": np.array(json.dumps([1, 2]))}, "sim must be a table"),
    ({"data": np.array(json.dumps({"pos": -5, "seen": 0}))}, "data position must be in"),
    ({"rng": np.array(json.dumps({"data": {"state": 1}}))}, "damaged checkpoint"),
])
def test_crafted_fields_are_one_line(tmp_path, change, needle):
    sim = Simulation(small_config())
    sim.run(3)
    path = save(sim, tmp_path)
    _rewrite(path, **change)
    with pytest.raises(CheckpointError) as info:
        load(tmp_path)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("key,value,needle", [
    ("step", 10**20, "step must be an integer in [0, 2**62)"),
    ("best_step", -1, "best_step must be an integer"),
    ("telemetry", "yes", "telemetry must be true or false"),
])
def test_counters_out_of_range_are_one_line(tmp_path, key, value, needle):
    sim = Simulation(small_config())
    sim.run(3)
    path = save(sim, tmp_path)
    with np.load(path) as npz:
        info = json.loads(str(npz["sim"]))
    _rewrite(path, sim=np.array(json.dumps({**info, key: value})))
    with pytest.raises(CheckpointError) as caught:
        load(tmp_path)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_huge_declared_shape_is_one_line(tmp_path):
    import zipfile

    sim = Simulation(small_config())
    path = save(sim, tmp_path)
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**14,)}
    with zipfile.ZipFile(path, "a") as z, z.open("huge.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load(tmp_path)


def test_an_old_checkpoints_snapshots_still_load():
    from nnsim.engine.checkpoint import load_snapshot, snapshot_steps

    here = Path(__file__).parent / "data" / "columns-v1.npz"
    assert snapshot_steps(here) == [0, 2, 4]
    snap = load_snapshot(here, 4)
    assert snap.step == 4 and snap.params.shape == load(here)[0].net.params.shape


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["periodic", "final", "rewind",
                                                               "adam", "every3"])),
                min_size=1, max_size=8),
       st.integers(12, 40))
def test_any_sequence_of_saves_loads_back_the_window_it_was_given(tmp_path_factory, plan,
                                                                   keep):
    """Periodic saves (chunks reused), final ones (compacted, old rows dropped), a rewound
    run, a changed optimizer (a rebuilt run, a new history) and unmeasured steps, in any
    order, with a history window that slides: each save loads back exactly the records it
    was given."""
    from nnsim.engine.rewind import restore, take

    where = tmp_path_factory.mktemp("ck")
    sim = Simulation(small_config(("train.eval_every", 0)))
    window: list = []
    snap = take(sim)
    for n, action in plan:  # as the TUI's Runner does it
        if action == "rewind":
            restore(sim, snap)
            window = [r for r in window if r.step <= sim.step_count]
        elif action == "adam" and sim.config.optimizer.name != "adam":
            sim.reconfigure(sim.config.with_overrides([("optimizer.name", "adam")]))
            window, snap = [], take(sim)  # a rebuilt run: a new history from step 0
        snap = take(sim) if n % 2 else snap
        new = list(sim.steps(n, every=3 if action == "every3" else 1))
        window = (window + new)[-keep:]
        save(sim, where, window, durable=False, compact=action == "final")
        assert dumps(load(where)[1]) == kept(window, "float64")


def _with_snapshots(where: Path, steps: int = 10) -> tuple[Path, dict[str, np.ndarray]]:
    """A checkpoint saved with a snapshot every 5 steps, and its arrays (to damage)."""
    from nnsim.engine.rewind import SnapshotStore

    sim = Simulation(small_config())
    store = SnapshotStore(interval=5)
    for _ in range(steps):
        store.keep(sim)
        sim.step()
    save(sim, where, [], snapshots=store)
    path = checkpoint.checkpoint_path(where)
    with np.load(path) as npz:
        return path, {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("entry", [[0, 999999], 7, [0], ["x", {}], None,
                                   [0, {}, "../../checkpoint.npz"], [0, {}, 5]])
def test_a_damaged_snapshot_index_is_one_line(tmp_path, entry):
    path, arrays = _with_snapshots(tmp_path)
    arrays["snapshots/index"] = np.array(json.dumps({"5": entry}))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="damaged snapshot at step 5") as info:
        checkpoint.load_snapshot(tmp_path, 5)
    assert "\n" not in str(info.value)


def test_a_checkpoint_that_needs_a_missing_plugin_says_so(tmp_path):
    sim = Simulation(small_config())
    path = save(sim, tmp_path)
    with np.load(path) as npz:
        toml = str(npz["config"])
    assert 'activation = "tanh"' in toml
    _rewrite(path, config=np.array(toml.replace('activation = "tanh"',
                                                'activation = "extras_swish"')))
    with pytest.raises(CheckpointError) as caught:
        load(tmp_path)
    text = str(caught.value)
    assert text.startswith(str(path)) and "not installed" in text and "extras_swish" in text


def _kept_store(sim, steps=30, interval=5):
    from nnsim.engine.rewind import SnapshotStore

    store = SnapshotStore(interval=interval)
    for _ in range(steps):
        store.keep(sim)
        sim.step()
    store.keep(sim)
    return store


def test_periodic_saves_write_each_snapshot_once_and_the_final_save_takes_them_back(tmp_path):
    sim = Simulation(small_config())
    store = _kept_store(sim)
    path = save(sim, tmp_path, [], durable=False, snapshots=store, compact=False)
    parts = checkpoint.parts_path(path)
    first = {p.name: p.stat().st_mtime_ns for p in parts.glob("snapshot-*")}
    assert len(first) == len(store.steps()) == 7
    with np.load(path) as npz:
        assert "snapshots/blob" not in npz.files  # the checkpoint only names the files
    small = path.stat().st_size
    save(sim, tmp_path, [], durable=False, snapshots=store, compact=False)
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("snapshot-*")} == first
    for step in store.steps():
        snap = checkpoint.load_snapshot(tmp_path, step)
        assert np.array_equal(snap.params, store.get(step).params)
    save(sim, tmp_path, [], durable=False, snapshots=store)  # final: one file again
    assert not parts.exists() and path.stat().st_size > small + 6 * sim.net.params.nbytes
    assert np.array_equal(checkpoint.load_snapshot(tmp_path, 15).params,
                          store.get(15).params)


def test_thinned_snapshots_leave_no_files_behind(tmp_path):
    sim = Simulation(small_config())
    store = _kept_store(sim)
    path = save(sim, tmp_path, [], durable=False, snapshots=store, compact=False)
    with store._lock:
        for step in (5, 10, 15):
            del store.snapshots[step]
    save(sim, tmp_path, [], durable=False, snapshots=store, compact=False)
    names = sorted(p.name for p in checkpoint.parts_path(path).iterdir())
    assert [int(n.split("-")[1]) for n in names] == [0, 20, 25, 30]
    assert checkpoint.snapshot_steps(tmp_path) == [0, 20, 25, 30]


def test_a_missing_snapshot_file_is_one_line(tmp_path):
    sim = Simulation(small_config())
    store = _kept_store(sim, steps=10)
    path = save(sim, tmp_path, [], durable=False, snapshots=store, compact=False)
    for p in checkpoint.parts_path(path).glob("snapshot-5-*.bin"):
        p.unlink()
    with pytest.raises(CheckpointError, match="snapshot-5-.*: missing") as info:
        checkpoint.load_snapshot(tmp_path, 5)
    assert "\n" not in str(info.value) and "copy that folder" in str(info.value)
    assert np.array_equal(checkpoint.load_snapshot(tmp_path, 10).params,
                          store.get(10).params)


def test_a_checkpoint_copied_without_its_parts_says_what_is_missing(tmp_path):
    sim = Simulation(small_config())
    save(sim, tmp_path / "a", sim.run(20), durable=False, compact=False)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / checkpoint.FILE_NAME).write_bytes(
        (tmp_path / "a" / checkpoint.FILE_NAME).read_bytes())
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "b")
    text = str(info.value)
    assert "\n" not in text and "history-" in text and "checkpoint.parts/ beside it" in text
    assert load(tmp_path / "a")[0].step_count == 20


def test_a_run_that_saves_removes_the_temporary_files_of_killed_writers(tmp_path):
    """A save killed after writing its temporary file leaves it; the next writer of that
    checkpoint removes those whose process is gone, and no other file."""
    done = subprocess_pid_that_ended()
    path = checkpoint.checkpoint_path(tmp_path / "ck")
    path.parent.mkdir()
    dead = path.with_name(f".{path.name}.{done}.0123abcd.tmp")
    alive = path.with_name(f".{path.name}.{os.getppid()}.0123abcd.tmp")  # a live process
    other = path.with_name(f".other.npz.{done}.0123abcd.tmp")  # another checkpoint's
    for f in (dead, alive, other):
        f.write_bytes(b"partial")
    with checkpoint.writer_lock(tmp_path / "ck"):
        assert not dead.exists() and alive.exists() and other.exists()


def subprocess_pid_that_ended() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_parts_folders_are_named_by_the_whole_checkpoint_name(tmp_path):
    names = {checkpoint.parts_path(tmp_path / n).name
             for n in ("checkpoint.npz", "lr0.01", "lr0.05", "x.parts", "run.npz")}
    assert names == {"checkpoint.parts", "lr0.01.parts", "lr0.05.parts", "x.parts.parts",
                     "run.parts"}


def test_a_periodic_checkpoint_of_an_earlier_version_finds_its_parts(tmp_path):
    """Earlier versions put the parts of `lr0.01` in `lr0.parts`: still read from there."""
    sim = Simulation(small_config())
    window = sim.run(20)
    path = save(sim, tmp_path / "lr0.01", window, durable=False, compact=False)
    os.rename(checkpoint.parts_path(path), tmp_path / "lr0.parts")
    assert dumps(load(path)[1]) == kept(window, sim.config.model.dtype)


@pytest.mark.parametrize("every", [1, 3])
def test_periodic_saves_write_the_same_history_from_the_kept_counts(tmp_path, monkeypatch,
                                                                    every):
    """A run whose telemetry keeps its histogram counts for periodic saves
    (`Telemetry.keep_counts`, as `nnsim run --checkpoint-every` asks) writes the same history
    bytes as one that reads them back out of the records, measured on every step or not."""
    taken = []
    counted = checkpoint._counted
    monkeypatch.setattr(checkpoint, "_counted",
                        lambda sim, records: taken.append(counted(sim, records)) or taken[-1])
    chunks = []
    for keep in (False, True):
        sim, window = Simulation(small_config()), []
        if keep:
            sim.telemetry.keep_counts(25)
        measured = []
        for _ in range(6):
            new = list(sim.steps(25, every=every))
            measured.append(sum(bool(r.layers) for r in new))
            window = (window + new)[-190:]
            save(sim, tmp_path / str(keep), window, durable=False, compact=False)
        chunks.append([blob for _, blob, _, _ in sim._history_chunks["chunks"]])
    assert len(chunks[1]) == 6 and chunks[0] == chunks[1]
    assert [x is None for x in taken] == [True] * 6 + [False] * 6  # the counts were taken
    # one row of 20 bins a hidden layer (two of them) for each measured step of the 25 new
    assert [x.shape for x in taken[6:]] == [(m, 2 * 20) for m in measured]
    assert min(measured) < 25 if every > 1 else min(measured) == 25


def test_kept_counts_serve_only_the_records_they_were_counted_for():
    sim = Simulation(small_config())
    sim.telemetry.keep_counts(10)
    records = sim.run(12)
    assert checkpoint._counted(sim, records[-10:]) is not None
    assert checkpoint._counted(sim, records) is None  # more than it keeps
    other = Simulation(small_config()).run(10)  # the same numbers, other objects
    assert checkpoint._counted(sim, other) is None
    sim.telemetry.state_norm["extra"] = [0.0] * len(sim.net.dense)  # a new state vector
    sim.telemetry.layers(np.zeros((4, 3)))
    assert len(sim.telemetry.counts) == 1  # a new layout starts afresh


def test_run_with_periodic_saves_takes_the_kept_counts(tmp_path, monkeypatch, capsys):
    from nnsim.cli import main

    taken = []
    counted = checkpoint._counted
    monkeypatch.setattr(checkpoint, "_counted",
                        lambda sim, records: taken.append(counted(sim, records)) or taken[-1])
    config = tmp_path / "small.toml"
    config.write_text(small_config().to_toml())
    assert main(["run", str(config), "--steps", "60", "--out", os.devnull, "--checkpoint",
                 str(tmp_path / "ck"), "--checkpoint-every", "20"]) == 0
    # three periodic saves of 20 new records each; the final save takes all 60 back
    assert [None if x is None else x.shape for x in taken] == [(20, 40)] * 3 + [None]
    taken.clear()  # saves far apart: the counts would cost memory for little
    every = str(checkpoint.KEEP_COUNTS_EVERY + 1)
    assert main(["run", str(config), "--steps", every, "--out", os.devnull, "--checkpoint",
                 str(tmp_path / "far"), "--checkpoint-every", every]) == 0
    assert taken == [None, None]


def test_a_buffer_of_python_objects_is_a_one_line_error_not_a_pickle(tmp_path, monkeypatch):
    sim = Simulation(small_config())
    sim.run(3)
    monkeypatch.setattr(sim.net, "buffers", lambda: {"layer1.notes": np.array([{}], object)})
    with pytest.raises(CheckpointError, match="cannot write buffer/layer1.notes: it holds "
                                              "Python objects, not numbers"):
        save(sim, tmp_path, sim.run(1))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_snapshot_declaring_a_negative_shape_is_damaged(tmp_path):
    """It read as an empty array, and a branch from it said the network's layout changed."""
    path, arrays = _with_snapshots(tmp_path, 6)
    index = json.loads(str(arrays["snapshots/index"]))
    index["5"][1]["params"][2] = [-1]
    arrays["snapshots/index"] = np.array(json.dumps(index))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="damaged snapshot at step 5 .*params declares "
                                              "the shape \\[-1\\], with a negative size"):
        checkpoint.load_snapshot(tmp_path, 5)


_SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, 1e-310, 3.4e38, 1e300, 1.0, -2.5]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                    min_size=1, max_size=3),
       st.sampled_from(["float32", "float64"]), st.integers(0, 2**32 - 1),
       st.sampled_from([0, 1]), st.booleans())
def test_history_coding_gives_back_every_bit(rows, shapes, dtype, seed, level, big_counts):
    """A chunk's step sizes are stored as differences from a prediction and its histograms
    as changes from the row before: whatever the numbers (NaN, ±inf, zeros, subnormals,
    counts past 2**16), decoding gives back exactly the bits that were stored."""
    rng = np.random.default_rng(seed)
    layout = [[i + 1, "hidden", 4, 3, [f"s{k}" for k in range(ns)], [f"l{k}" for k in range(nl)]]
              for i, (ns, nl) in enumerate(shapes)]
    width = sum(len(LAYER_FLOATS) + ns + nl for ns, nl in shapes) + 2 * len(shapes)
    values = rng.standard_normal((rows, width)) * 10.0 ** rng.integers(-8, 8, (rows, width))
    special = rng.random((rows, width)) < 0.3
    values[special] = rng.choice(_SPECIAL, special.sum())
    g = len(checkpoint._GLOBAL_FLOATS)
    cols = {"step": np.arange(rows, dtype=np.int64) + 5,
            "global": rng.standard_normal((rows, g)), "none": rng.random((rows, g)) < 0.2,
            "measured": rng.random(rows) < 0.8, "values": values,
            "hist": rng.integers(0, 2**40 if big_counts else 300, (rows, 3 * len(shapes)))}
    blob, meta = checkpoint._encode(cols, layout, dtype, {}, level, coding=1)
    assert meta["coding"] == 1
    assert checkpoint._encode(cols, layout, dtype, {}, level)[1]["coding"] == level
    back = checkpoint._decode(np.frombuffer(blob, np.uint8), json.loads(json.dumps(meta)), g,
                              LAYER_FLOATS)
    with np.errstate(over="ignore"):
        stored = values.astype(dtype)
    assert np.array_equal(back["values"].view(f"u{stored.itemsize}"),
                          stored.view(f"u{stored.itemsize}"))
    assert np.array_equal(back["hist"], cols["hist"])
    for key in ("step", "none", "measured"):
        assert np.array_equal(back[key], cols[key])
    assert np.array_equal(back["global"], cols["global"])


def test_a_history_chunk_of_the_earlier_coding_still_reads(tmp_path):
    """Chunks written before the coding (no "coding" in their description) read as they
    were written."""
    sim = Simulation(small_config())
    records = sim.run(40)
    layout = checkpoint._layout(records[-1])
    cols = checkpoint._columns(records, layout)
    blob, meta = checkpoint._encode(cols, layout, "float64", {}, 1, coding=0)
    del meta["coding"]
    back = checkpoint._decode(np.frombuffer(blob, np.uint8), meta,
                              len(checkpoint._GLOBAL_FLOATS), LAYER_FLOATS)
    assert np.array_equal(back["values"], cols["values"], equal_nan=True)
    assert np.array_equal(back["hist"], cols["hist"])
    new, _ = checkpoint._encode(cols, layout, "float64", {}, 1)
    assert len(new) < len(blob)  # the coding is what makes it smaller


def test_snapshots_are_stored_compactly_and_those_of_earlier_versions_still_read(
        tmp_path, monkeypatch):
    """A kept snapshot's data order is 2 bytes an example, its description UTF-8 (they
    were 8 bytes and 4 bytes a character: 50 KB a snapshot of the default network, now 40);
    snapshots written the earlier way load as before."""
    path, arrays = _with_snapshots(tmp_path / "new")
    names = json.loads(str(arrays["snapshots/index"]))["5"][1]
    assert names["data_order"][1] == "<u2" and names["meta"][1] == "|u1"
    new = checkpoint.load_snapshot(tmp_path / "new", 5)
    monkeypatch.setattr(checkpoint, "_utf8", checkpoint._text)
    monkeypatch.setattr(checkpoint, "_smallest", lambda order: order)
    path, arrays = _with_snapshots(tmp_path / "old")
    names = json.loads(str(arrays["snapshots/index"]))["5"][1]
    assert names["data_order"][1] == "<i8" and names["meta"][1].startswith("<U")
    old = checkpoint.load_snapshot(tmp_path / "old", 5)
    assert np.array_equal(old.data[0], new.data[0]) and old.data[0].dtype == np.int64
    assert old.rngs == new.rngs and old.counters == new.counters
    assert np.array_equal(old.params, new.params)


@pytest.mark.parametrize("damage", ["zip version", "npy header"])
def test_a_checkpoint_damaged_where_zipfile_or_numpy_raise_oddly_is_one_line(tmp_path, damage):
    """An unknown zip version raised NotImplementedError and a broken .npy header
    SyntaxError: `--resume` printed a traceback and the TUI's l halted the run on screen."""
    path, _ = _with_snapshots(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "zip version":
        at = data.find(b"PK\x01\x02")
        data[at + 6] = 0xFF  # the central directory's "version needed": 25.5
    else:
        at = data.find(b"\x93NUMPY")
        data[data.find(b"}", at)] = ord("(")
    path.write_bytes(bytes(data))
    # (the broken header is the first array's: the snapshots, apart from it, still read)
    for read in (load, checkpoint.load_snapshots) if damage == "zip version" else (load,):
        with pytest.raises(CheckpointError) as info:
            read(tmp_path)
        assert "\n" not in str(info.value)


def test_a_checkpoint_written_by_the_previous_version_loads_as_it_did():
    """tests/engine/data/version1 was saved by nnsim before the history coding and the
    compact snapshots (version 1), with what that nnsim read back from it."""
    where = Path(__file__).parent / "data" / "version1"
    expected = json.loads((where / "expected.json").read_text())
    sim, history = load(where)
    assert [r.to_dict() for r in history] == expected["history"]
    assert sim.step_count == expected["step"]
    snap = checkpoint.load_snapshot(where, 20)
    assert float(snap.params.astype("float64").sum()) == expected["snapshot20_params_sum"]
    assert snap.data[0].tolist()[:10] == expected["snapshot20_order"]
    with np.load(where / "checkpoint.npz") as npz:
        assert int(npz["version"]) == 1


def test_a_checkpoint_is_written_as_version_2_which_an_older_reader_refuses(tmp_path):
    """Coded chunks read by an nnsim that does not know the coding would give wrong
    histograms and step sizes without an error: the version says it is newer."""
    path = save(Simulation(small_config()), tmp_path)
    with np.load(path) as npz:
        assert int(npz["version"]) == checkpoint.VERSION == 2
    _rewrite(path, version=np.array(3))
    with pytest.raises(CheckpointError, match="checkpoint version 3; this nnsim reads "
                                              "versions 1 to 2"):
        load(tmp_path)
