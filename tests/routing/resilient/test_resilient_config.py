"""The typed configuration of ``sixpod tor-resilient``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from resilientkit import (
    V4,
    V6,
)
from sixpod.routing.resilient.config import TorResilientConfig
from sixpod.routing.resilient.model import (
    Settings,
)


def test_config_is_typed_and_strict() -> None:
    cfg = TorResilientConfig.model_validate(
        {"vips": ["203.0.113.10", "2001:db8:f::10/128"], "netns": "tor"}
    )
    assert cfg.settings() == Settings(vips=frozenset({V4, V6}))
    for bad in (
        {"vips": ["203.0.113.0/24"]},
        {"vips": ["203.0.113.10", "203.0.113.10/32"]},
        {"vips": [], "table": 254},
        {"vips": [], "protocol": 186},
        {"vips": [], "rule_priority": 32766},
        {"vips": [], "buckets": 1},
        {"vips": [], "colour": "blue"},
        {"vips": ["203.0.113.010"]},
    ):
        with pytest.raises(ValidationError):
            TorResilientConfig.model_validate(bad)
