"""The TOML writer: what it writes is valid TOML that reads back to what was written
(configs are saved in checkpoints and by ctrl+s, and printed by `nnsim config`)."""

import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsim.components import Hyper
from nnsim.config import Config, check, dumps_toml, load
from nnsim.errors import ConfigError

KEYS = st.text(max_size=6)
SCALARS = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)
CONFIGS = st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(VALUES, max_size=3),
                                          st.dictionaries(KEYS, VALUES, max_size=4)),
                          max_size=5)


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN and 0.0 apart from -0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                     math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(CONFIGS)
def test_what_the_writer_writes_reads_back_the_same(data):
    text = dumps_toml(data)
    assert same(tomllib.loads(text), data), text


@pytest.mark.parametrize("text", ["a\x00b", "tab\there", "bell\x07", "del\x7f", "cr\r\n",
                                  'quote " and \\ backslash', "\U0001F600 beyond the BMP",
                                  "\x1b[31m escape", "é ü 中"])
def test_control_characters_quotes_and_wide_characters(text):
    written = dumps_toml({"s": text, "t": {"inner": {"x": text}}})
    assert tomllib.loads(written) == {"s": text, "t": {"inner": {"x": text}}}
    assert all(ch == "\n" or (ord(ch) >= 0x20 and ord(ch) != 0x7F) for ch in written)
    assert all(ord(ch) <= 0xFFFF for ch in written)


def test_nan_and_infinities_are_written_as_toml_nan_and_inf():
    written = dumps_toml({"x": float("nan"), "y": float("inf"), "z": float("-inf")})
    assert written == "x = nan\ny = inf\nz = -inf\n"
    read = tomllib.loads(written)
    assert math.isnan(read["x"]) and read["y"] == math.inf and read["z"] == -math.inf


def test_what_the_writer_cannot_write_is_refused():
    with pytest.raises(ValueError, match="lone surrogate"):
        dumps_toml({"s": "\udcff"})
    with pytest.raises(ValueError, match="64-bit"):
        dumps_toml({"n": 2**64})
    # and the config never holds either: a string hyperparameter refuses undecodable text
    with pytest.raises(ConfigError, match="expected a string"):
        check("k", Hyper("abc"), "bytes \udcff")


def test_a_config_round_trips_through_its_toml():
    config = load(sets=["model.activation={name=\"leaky_relu\", slope=0.1}",
                        "optimizer.name=adam", "train.l2=1e-05", "model.hidden=[7,3]"])
    assert Config.from_dict(tomllib.loads(config.to_toml())) == config
