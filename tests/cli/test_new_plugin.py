"""nnsim new-plugin writes a plugin distribution that installs and passes its own tests."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from nnsim.cli import main
from nnsim.scaffold import names

FAMILIES = {"activation": "mine_softsign", "initializer": "mine_scaled_normal",
            "normalizer": "mine_rmsnorm", "optimizer": "mine_heavy_ball",
            "dataset": "mine_rings", "lesson": "mine_tiny_lr", "check": "mine_tiny_output"}


def venv(where: Path) -> Path:
    """A fresh virtual environment that also sees this one's packages (nnsim, pytest, pip,
    setuptools), so that installing into it touches nothing here."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=60)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout
    here = sysconfig.get_paths()["purelib"]
    (Path(site.strip()) / "outer.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    return python


def test_the_new_plugin_installs_and_passes_its_own_tests(tmp_path):
    made = subprocess.run([sys.executable, "-m", "nnsim", "new-plugin", "mine", "--dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "nnsim-mine"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "nnsim_mine/__init__.py", "pyproject.toml", "tests/test_plugin.py"]
    assert '[project.entry-points.nnsim]\nmine = "nnsim_mine"' in \
        (root / "pyproject.toml").read_text()
    assert 'assert_plugin_conforms("nnsim-mine")' in (root / "tests/test_plugin.py").read_text()

    python = venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NNSIM_LOAD_PLUGINS", "NNSIM_DISABLE_PLUGINS")}
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--no-input", "-e", str(root)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert install.returncode == 0, install.stdout + install.stderr

    def pytest():
        return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(root / "tests")], capture_output=True, text=True,
                              env=env, cwd=root, timeout=120)

    tests = pytest()
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    listed = subprocess.run([str(python), "-m", "nnsim", "plugins", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    report = json.loads(listed.stdout)
    sources = {(family, e["name"]): e["source"] for family, entries in
               report["families"].items() for e in entries}
    assert {key: sources.get(key) for key in FAMILIES.items()} == \
        {key: "nnsim-mine 0.1.0" for key in FAMILIES.items()}
    assert report["failures"] == []

    # its tests are real: an optimizer keeping its velocity on self fails them
    module = root / "nnsim_mine" / "__init__.py"
    module.write_text(module.read_text().replace('''        v = state["velocity"]
        v *= self.beta
        v += grads''', '''        v = self.v = self.beta * getattr(self, "v", 0.0) + grads'''))
    broken = pytest()
    assert broken.returncode == 1
    assert "optimizer 'mine_heavy_ball'  state kept in the state arrays" in broken.stdout


def test_a_bad_name_or_a_folder_in_use_is_one_line(tmp_path, capsys):
    assert main(["new-plugin", "9lives", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == ("nnsim new-plugin: the plugin name '9lives' must start with a letter and "
                   "hold only ASCII letters, digits, '-' and '_' (e.g. 'mine' or "
                   "'nnsim-mine')\n")
    assert main(["new-plugin", "nnsim-", "--dir", str(tmp_path)]) == 2
    assert "has nothing after the 'nnsim-' prefix" in capsys.readouterr().err
    assert main(["new-plugin", "ünïcode", "--dir", str(tmp_path)]) == 2
    assert "ASCII letters" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "nnsim-mine").mkdir()
    (tmp_path / "nnsim-mine" / "keep.txt").write_text("mine")
    assert main(["new-plugin", "nnsim-mine", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"nnsim new-plugin: cannot write the plugin: {tmp_path}/nnsim-mine already "
                   f"exists and is not an empty folder; choose another NAME or --dir\n")
    assert (tmp_path / "nnsim-mine" / "keep.txt").read_text() == "mine"


def test_names():
    assert names("My_Plugin") == {"dist": "nnsim-my-plugin", "module": "nnsim_my_plugin",
                                  "entry": "my_plugin", "prefix": "my_plugin"}
    assert names("nnsim-mine")["dist"] == "nnsim-mine"


def test_a_name_too_long_or_taken_by_an_installed_module_is_refused(tmp_path, capsys):
    """'plugins' gave the module nnsim_plugins, nnsim's own: the written distribution
    installed, but its components never loaded and its tests failed."""
    from nnsim.cli import main

    for name, says in (("plugins", "gives the module nnsim_plugins, which is already "
                                   "installed"),
                       ("a" * 100_000, "is 100,000 characters long; give one of at most 64")):
        assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1 and len(err) < 300
    assert not list(tmp_path.iterdir())


def test_writing_into_the_folder_it_is_run_from_is_no_traceback(tmp_path, monkeypatch, capsys):
    """Run from inside the folder it writes, the new module is importable once written:
    asking for the names again afterwards refused them (a ValueError traceback)."""
    (tmp_path / "nnsim-zq").mkdir()
    monkeypatch.chdir(tmp_path / "nnsim-zq")
    monkeypatch.syspath_prepend(str(tmp_path / "nnsim-zq"))
    assert main(["new-plugin", "zq", "--dir", str(tmp_path)]) == 0
    assert "module nnsim_zq" in capsys.readouterr().out
