"""Shared fixtures."""

import pytest

from nnsim.pluginmanager import default_registry


@pytest.fixture(scope="session")
def registry():
    return default_registry()
