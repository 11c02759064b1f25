"""YAML loading for renders: libyaml's C parser when present (a render is ~1,000 lines)."""

from __future__ import annotations

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str) -> list[Any]:
    """Every document of ``text`` (``None`` for empty ones, as PyYAML gives them)."""
    return list(yaml.load_all(text, Loader=_Loader))
