"""Validate AsyncAPI documents with the AsyncAPI project's parser; install it first if needed.

Usage: ``python tools/asyncapi/check.py FILE...`` (exit 0 valid, 1 invalid, 2 tool unavailable).

The parser is an npm package pinned by ``package-lock.json`` beside this file. ``npm ci`` runs
here when ``node_modules`` is missing or was installed from another lock file (a stamp holds the
lock's hash), so a clean clone needs nothing installed by hand and later runs cost only the
validation (about 3 s). ``node_modules`` is ignored by git.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "package-lock.json"
MODULES = HERE / "node_modules"
STAMP = MODULES / ".installed-lock-sha256"


def _lock_hash() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


def ensure_installed() -> str | None:
    """Install the pinned parser when missing or stale; return why it is unavailable, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    with (HERE / ".install.lock").open("w") as guard:  # xdist workers may race here
        fcntl.flock(guard, fcntl.LOCK_EX)
        want = _lock_hash()
        if STAMP.is_file() and STAMP.read_text().strip() == want:
            return None
        out = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            return f"npm ci failed: {(out.stderr or out.stdout).strip()[-800:]}"
        STAMP.write_text(want + "\n")
    return None


def validate(files: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the parser on ``files``; its output names every diagnostic."""
    return subprocess.run(
        ["node", str(HERE / "validate.mjs"), *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    problem = ensure_installed()
    if problem is not None:
        print(f"asyncapi check: {problem}", file=sys.stderr)
        return 2
    out = validate(argv)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    return 0 if out.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
