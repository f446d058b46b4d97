"""Fixtures for the Razor unit tests (helpers live in ``razorkit``)."""

from __future__ import annotations

import random

import pytest

from razorkit import config, state
from sixpod.razor.engine import Engine


@pytest.fixture
def engine() -> Engine:
    return Engine(config(), state(), rng=random.Random(5))
