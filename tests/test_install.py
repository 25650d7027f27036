"""The Quickstart's first command works from any folder: nnsim imports from the clone's
parent folder, where a clone named `nnsim` could otherwise shadow the package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
IMPORT = [sys.executable, "-c", "import nnsim, nnsim.cli; print(nnsim.__version__)"]


def test_nnsim_imports_from_the_parent_folder_of_the_clone():
    result = subprocess.run(IMPORT, cwd=ROOT.parent, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_a_regular_install_imports_beside_a_clone_named_nnsim(tmp_path):
    """What `pip install .` (the Quickstart) gives: a regular package wins over the clone
    folder, which Python would otherwise take for a namespace package named nnsim."""
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if pip.returncode != 0:
        pytest.skip("pip is not available in this environment")
    try:
        import setuptools  # noqa: F401  (to build without network access)
    except ImportError:
        pytest.skip("setuptools is not installed: cannot build nnsim offline")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("nnsim", "plugins"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--no-build-isolation", "--no-compile", "--target", str(target),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "nnsim").symlink_to(ROOT, target_is_directory=True)  # a clone named nnsim
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(IMPORT, cwd=parent, capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr
    located = subprocess.run([sys.executable, "-c", "import nnsim; print(nnsim.__file__)"],
                             cwd=parent, capture_output=True, text=True, env=env, timeout=120)
    assert Path(located.stdout.strip()).parent == target / "nnsim"
