"""Choices and defaults of options that the command line and the plan both know. Beam-free, so
that ``cli`` builds its parser (and runs ``export``, ``query``, ``validate-config``) without
importing Beam."""

from __future__ import annotations

import os

DEFAULT_SHARDING_CONFIG = "homo_sapiens_default.yaml"
MERGE_STRATEGIES = ("NONE", "MOVE_TO_CALLS", "MERGE_WITH_NON_VARIANTS")
SAMPLE_NAME_ENCODINGS = ("WITHOUT_FILE_PATH", "WITH_FILE_PATH")


def bundled_config(name: str) -> str:
    """Path of a config shipped in sharding_configs/ (installed as package data)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # variant_etl/
    installed = os.path.join(package, "sharding_configs")
    for folder in (installed, os.path.join(package, "..", "sharding_configs")):
        candidate = os.path.normpath(os.path.join(folder, name))
        if os.path.exists(candidate):
            return candidate
    return name
