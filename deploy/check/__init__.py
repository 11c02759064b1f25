"""Offline deployment check: renders, strict schemas, manifest rules, topic drift, Dockerfile lint.

Entry points: ``python -m deploy.check`` (``make deploy-check``) and :func:`run_checks`, which the
tests call on broken copies of ``deploy/`` to prove each rule fails with a clear message.
"""

from .findings import Finding, Report
from .runner import DEPLOY_DIR, run_checks

__all__ = ["DEPLOY_DIR", "Finding", "Report", "run_checks"]
