"""The README is short and its examples work; the references in docs/ cover every config key
and record field; every TOML file the documentation names exists and loads."""

import re
from pathlib import Path

import pytest

from nnsim.config import KEYS, SEED, _toml_value, load
from nnsim.engine import Simulation
from nnsim.engine.records import LAYER_SCALARS
from nnsim.engine.writers import GLOBAL_FIELDS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
#: the commands CI runs (.ci/run): the Quickstart must keep them as they are
QUICKSTART = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install . && nnsim",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test,digits,serve]' "
    "playwright && python -m pytest",
)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_is_short_and_keeps_the_quickstart_commands():
    assert len(README.encode()) <= 8 * 1024
    quickstart = README[README.index("## Quickstart"):README.index("\n## ", README.index(
        "## Quickstart") + 3)]
    for command in QUICKSTART:
        assert f"```sh\n{command}\n```" in quickstart


def test_the_api_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves a checkpoint
    block = next(b for b in python_blocks(README) if "Simulation(" in b)
    exec(compile(block.replace("sim.run(500)", "sim.run(5)"), "README.md", "exec"), {})
    assert (tmp_path / "ck" / "checkpoint.npz").exists()


def undocumented_config_keys(doc: str) -> list[str]:
    """Keys without a row `| `KEY` | `DEFAULT` |` in the reference, with the default that
    the declaration (`KEYS`, `SEED`) gives."""
    rows = [("seed", SEED)] + [(f"{section}.{key}", spec) for section, keys in KEYS.items()
                               for key, spec in keys.items()]
    return [key for key, spec in rows
            if f"| `{key}` | `{_toml_value(spec.default)}` |" not in doc]


def test_every_config_key_is_in_the_config_reference_with_its_default():
    doc = DOCS["config.md"]
    assert undocumented_config_keys(doc) == []
    # a key left out, or a default that is not the declared one, is caught
    assert undocumented_config_keys(doc.replace("| `train.l2` |", "|")) == ["train.l2"]
    assert undocumented_config_keys(doc.replace("| `train.steps` | `3000` |",
                                                "| `train.steps` | `2000` |")) == ["train.steps"]


def test_every_command_is_in_the_cli_reference():
    from nnsim.cli import COMMANDS

    doc = DOCS["cli.md"]
    assert [c.name for c in COMMANDS if f"| `nnsim {c.name}" not in doc] == []
    assert "`nnsim --version`" in doc


def undocumented_record_fields(doc: str) -> set[str]:
    record = Simulation().step().to_dict()
    names = {*GLOBAL_FIELDS, *LAYER_SCALARS, "hist", "hist_range", *record,
             *record["layers"][0]}
    # optimizer state norms and learnable parameters are covered by `{state}_norm` and
    # `{param}_mean`, with examples
    return {n for n in names if f"`{n}`" not in doc
            and not (n.endswith("_norm") and "`{state}_norm`" in doc)
            and not (n.endswith("_mean") and "`{param}_mean`" in doc)}


def test_every_record_field_is_in_the_record_reference():
    doc = DOCS["records.md"]
    assert undocumented_record_fields(doc) == set()
    assert undocumented_record_fields(doc.replace("`update_cos`", "")) == {"update_cos"}
    assert "`velocity_norm`" in doc  # the default optimizer's state, named as an example


def test_every_example_config_loads():
    examples = sorted((ROOT / "examples").glob("*.toml"))
    assert len(examples) >= 3
    for path in examples:
        load(path)


def named_toml_files(text: str) -> set[str]:
    """Paths of TOML files named in a document, leaving out placeholders in capitals
    (CONFIG.toml, NAME.toml) and a plugin's own pyproject.toml."""
    return {name for name in re.findall(r"[\w./-]+\.toml\b", text)
            if not name.split("/")[-1][:-5].isupper() and name != "pyproject.toml"}


def test_every_toml_file_the_documentation_names_exists():
    documents = {"README.md": README, **{f"docs/{n}": t for n, t in DOCS.items()}}
    named = {(doc, name) for doc, text in documents.items() for name in named_toml_files(text)}
    assert ("README.md", "examples/dead_relu.toml") in named
    assert [(doc, name) for doc, name in sorted(named) if not (ROOT / name).is_file()] == []
    assert named_toml_files("nnsim experiment.toml and CONFIG.toml") == {"experiment.toml"}


@pytest.mark.parametrize("name", ["README.md", *(f"docs/{n}" for n in DOCS)])
def test_every_relative_link_resolves(name):
    text = (ROOT / name).read_text()
    links = re.findall(r"\]\(([^)#:]+)\)", text)
    missing = [link for link in links if not ((ROOT / name).parent / link).exists()]
    assert missing == []
