from __future__ import annotations

import pytest
from podtext import FULL, SMALL


@pytest.fixture
def small_text() -> str:
    return SMALL


@pytest.fixture
def full_text() -> str:
    return FULL
