"""Where the shared reference material (``/work/shared``) is, and a skip when it is absent.

The shared tree (Vonage digest, official specs, real payload examples) sits next to the repository
on development machines but not in a packaged checkout or CI image; tests that read it must skip
with a clear reason instead of failing. Override the location with ``VONAGE_SHARED_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(
    os.environ.get("VONAGE_SHARED_DIR", Path(__file__).resolve().parents[1] / ".." / "shared")
).resolve()
VONAGE_DIR = SHARED_DIR / "vonage"
EXAMPLES_DIR = VONAGE_DIR / "examples"
SPEC_DIR = VONAGE_DIR / "spec"


def shared_available() -> bool:
    return EXAMPLES_DIR.is_dir() and SPEC_DIR.is_dir()


def require_shared() -> Path:
    """Return the vonage dir, or skip the calling test when the shared tree is not present."""
    if not shared_available():
        pytest.skip(f"shared reference tree not found at {SHARED_DIR} (set VONAGE_SHARED_DIR)")
    return VONAGE_DIR


def example_names() -> list[str]:
    """File names in the shared examples folder ([] when absent: parametrized tests then skip)."""
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.is_file())
