"""The consoles the campaign commands print with: never wider than 80 columns.

Rich sizes to the terminal, and to 80 when there is none; a table laid out for a wide terminal
was clipped in an 80-column one, so every campaign table is laid out for 80 and the console is
capped there.
"""

from __future__ import annotations

import shutil

from rich.console import Console

__all__ = ["WIDTH", "make_console"]

WIDTH = 80


def make_console(*, stderr: bool = False) -> Console:
    width = min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)
    return Console(stderr=stderr, width=width)
