"""File paths named in a campaign submitted over HTTP: only inside ``CONTACTS_DIR``, if at all.

A campaign spec names its contact and DNC files, and the ingress opened whatever it named: with
the control token, ``"contacts": {"csv": "/proc/self/environ"}`` answered with the process's
environment, secrets included, and ``"dnc": ["/etc/passwd"]`` listed its lines as warnings. Over
HTTP a path is now resolved against the configured directory (symlinks followed first, so one
pointing out of it is refused like ``../../etc/passwd``), and every refusal reads the same, so
the answers tell nothing about which files exist or can be read. The CLI, run by the operator on
their own machine, keeps reading the paths it is given.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from contracts.campaign import CampaignSpec
from orchestrator.campaign.contacts import ContactFileError

__all__ = ["confine_spec", "resolve_inside"]


def _refused(field: str, name: str) -> ContactFileError:
    return ContactFileError(
        f"{field}: {name[:200]!r} is not a readable file inside CONTACTS_DIR "
        "(or upload it with the campaign: multipart/form-data)"
    )


def resolve_inside(root: Path, name: str, field: str) -> str:
    """The real path of ``name`` (relative to ``root``, or absolute) if it is a readable regular
    file inside ``root``; otherwise :class:`ContactFileError`, the same for every reason."""
    try:
        base = root.resolve(strict=True)
        real = (base / name).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise _refused(field, name) from None
    if not real.is_relative_to(base):
        raise _refused(field, name)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise _refused(field, name) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _refused(field, name)
    finally:
        os.close(fd)
    return str(real)


def confine_spec(spec: CampaignSpec, root: Path | None) -> CampaignSpec:
    """``spec`` with its contact and DNC paths resolved inside ``root`` (refused without one)."""
    named = [("contacts.csv", spec.contacts.csv), ("contacts.jsonl", spec.contacts.jsonl)]
    named += [(f"dnc[{i}]", p) for i, p in enumerate(spec.dnc)]
    named = [(field, p) for field, p in named if p]
    if not named:
        return spec
    if root is None:
        field = named[0][0]
        raise ContactFileError(
            f"{field}: file paths are not read over HTTP unless CONTACTS_DIR is set; upload the "
            "file with the campaign (multipart/form-data) or use a topic"
        )
    contacts = spec.contacts
    if contacts.csv:
        contacts = contacts.model_copy(
            update={"csv": resolve_inside(root, contacts.csv, "contacts.csv")}
        )
    if contacts.jsonl:
        contacts = contacts.model_copy(
            update={"jsonl": resolve_inside(root, contacts.jsonl, "contacts.jsonl")}
        )
    dnc = [resolve_inside(root, p, f"dnc[{i}]") for i, p in enumerate(spec.dnc)]
    return spec.model_copy(update={"contacts": contacts, "dnc": dnc})
