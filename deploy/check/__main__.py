"""``python -m deploy.check``: the offline deployment check behind ``make deploy-check``.

Exit status 0 when every check passed (or when kubectl could not be had at all, which prints a
loud SKIPPED banner; set DEPLOY_CHECK_REQUIRE_KUBECTL=1 to make that an error), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .runner import DEPLOY_DIR, run_checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.check", description=__doc__)
    parser.add_argument("--deploy-dir", type=Path, default=DEPLOY_DIR)
    parser.add_argument("--no-install", action="store_true", help="never install kubectl")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"deploy-check: {msg}", file=sys.stderr)

    report = run_checks(args.deploy_dir, install=not args.no_install, log=log)
    print(report.render_text())
    if report.skipped and os.environ.get("DEPLOY_CHECK_REQUIRE_KUBECTL"):
        return 1
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
