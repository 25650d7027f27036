"""What is checked when a simulation is built: a dataset's labels and classes, the memory a
network needs, and configs nested too deeply or echoing huge values. Each is one line."""

import numpy as np
import pytest

from nnsim.cli import main
from nnsim.components import Dataset
from nnsim.config import load, parse_set, read_toml_text
from nnsim.engine import Simulation
from nnsim.engine import simulation as simulation_module
from nnsim.errors import ConfigError, PluginError
from nnsim.pluginmanager import Entry, load_registry
from tests.helpers import small_config


def labelled(labels, classes=3, name="bad_labels"):
    class Bad(Dataset):
        def n_classes(self):
            if isinstance(classes, Exception):
                raise classes
            return classes

        def generate(self, rng):
            x = rng.standard_normal((60, 2))
            y = np.array([labels(i) for i in range(60)], dtype=object)
            try:
                y = y.astype(type(labels(0)))
            except (TypeError, ValueError):
                pass
            return x, y

    Bad.name = name
    registry = load_registry(entry_points=[], env={})
    registry.families["dataset"][name] = Entry(Bad, "nnsim_bad", "nnsim-bad 0.1")
    return registry, small_config().with_overrides([("data.name", name)], registry)


@pytest.mark.parametrize("labels,classes,message", [
    (lambda i: i % 3, RuntimeError("no idea"), "n_classes() raised RuntimeError: no idea"),
    (lambda i: i % 3, 0, "n_classes() must return an integer in [1, 65536], got 0"),
    (lambda i: i % 3, "3", "n_classes() must return an integer in [1, 65536], got '3'"),
    (lambda i: "cat" if i % 2 else "dog", 2, "must return integer class labels in [0, 2)"),
    (lambda i: -1 if i == 7 else i % 3, 3, "returned the label -1, outside [0, 3)"),
    (lambda i: 10**9 if i == 5 else i % 3, 3, "returned the label 1000000000, outside [0, 3)"),
    (lambda i: 3, 3, "returned the label 3, outside [0, 3) of its n_classes() = 3"),
    (lambda i: 0.5 * (i % 3), 3, "must return integer class labels in [0, 3), got dtype "
                                 "float64"),
])
def test_dataset_labels_are_checked_when_the_simulation_is_built(labels, classes, message):
    registry, config = labelled(labels, classes)
    with pytest.raises(PluginError) as info:
        Simulation(config, registry)
    text = str(info.value)
    assert text.startswith("dataset 'bad_labels'") and message in text and "\n" not in text


def test_whole_float_labels_are_accepted():
    registry, config = labelled(lambda i: float(i % 3), 3)
    sim = Simulation(config, registry)
    assert sim.data.outputs == 3 and sim.data.train_y.dtype == np.int64
    sim.run(2)


def test_a_network_that_cannot_fit_is_refused_with_the_estimate(monkeypatch, capsys):
    monkeypatch.setattr(simulation_module, "available_memory", lambda: 8 * 10**9)
    wide = small_config(("model.hidden", [8192] * 64))
    with pytest.raises(ConfigError) as info:
        Simulation(wide)
    text = str(info.value)
    assert text.startswith("model.hidden: this network needs about ")
    assert "GB (parameters" in text and "but 8.0 GB of memory is available" in text
    need = simulation_module.memory_estimate(wide, Simulation(small_config()).registry, 2, 3,
                                             240)
    assert sum(need.values()) > 60 * 10**9  # 64 x 8192 needs tens of GB
    assert main(["run", "--set", f"model.hidden={[8192] * 64}", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "of memory is available" in err
    Simulation(small_config(("model.hidden", [256, 256])))  # a normal size passes


def test_data_too_big_for_memory_is_a_config_error_not_a_plugin_failure(monkeypatch):
    from nnsim_plugins.datasets import Spiral

    def huge(self, rng):
        raise MemoryError("Unable to allocate 7.63 GiB")

    monkeypatch.setattr(Spiral, "generate", huge)
    with pytest.raises(ConfigError) as info:
        Simulation(small_config(("data.samples", 10**6)))
    text = str(info.value)
    assert text.startswith("data: the spiral dataset as configured (samples=1000000")
    assert "does not fit in the memory available" in text and "\n" not in text


def test_deeply_nested_toml_is_one_line(tmp_path):
    deep = "[" * 5000 + "1" + "]" * 5000
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_toml_text(f"x = {deep}\n", "deep.toml")
    with pytest.raises(ConfigError, match="model.hidden: value nested too deeply"):
        parse_set(f"model.hidden={deep}")
    path = tmp_path / "deep.toml"
    path.write_text(f"[model]\nhidden = {deep}\n")
    with pytest.raises(ConfigError, match=r"deep.toml: malformed TOML: .*nested too deeply"):
        load(path)


@pytest.mark.parametrize("item", [
    "model.activation=" + "x" * 8_000_000,
    "model.dropout=" + '"' + "y" * 8_000_000 + '"',
    "model.hidden=[" + "1," * 1_000_000 + "1]",
], ids=["name", "string", "list"])
def test_an_error_never_echoes_a_huge_value(item):
    with pytest.raises(ConfigError) as info:
        load(sets=[item])
    text = str(info.value)
    assert len(text) < 1000 and "characters left out" in text and "\n" not in text


def test_a_config_that_is_a_device_or_too_large_is_refused_before_reading(tmp_path):
    """ctrl+o on /dev/zero read forever on the TUI's thread while memory grew. A pipe
    (`--config <(make-config)`) still reads."""
    import os
    import threading

    from nnsim.config import MAX_CONFIG_BYTES, read_toml

    with pytest.raises(ConfigError, match="/dev/zero: is a device, not a file"):
        read_toml("/dev/zero")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match="is larger than 1,048,576 bytes"):
        read_toml(big)
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("seed = 3\n"))
    writer.start()
    assert read_toml(fifo) == {"seed": 3}
    writer.join()
