"""The committed Strimzi users must match what ``deploy/gen_users.py`` derives from the code.

A topic added to ``contracts/topics.py``, a role added to its ``TRAFFIC`` or a renamed consumer
group changes what each role may do; this check fails until the ``KafkaUser`` ACLs are
regenerated, naming the user and the ACL that differs. The cluster label and authentication type
are read from the committed file, so a regeneration with ``--cluster``/``--auth`` stays valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deploy import gen_users

from .findings import Report
from .yamlio import load_all as _load_all


def _by_user(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(d.get("metadata", {}).get("name")): d for d in docs if d.get("kind") == "KafkaUser"}


def _acl_key(rule: dict[str, Any]) -> str:
    res = rule.get("resource") or {}
    ops = ",".join(rule.get("operations") or [])
    what = " ".join(str(p) for p in (res.get("type"), res.get("patternType"), res.get("name")) if p)
    return f"{what}: {ops}"


def check_users(users_file: Path, report: Report) -> None:
    where = str(users_file.relative_to(users_file.parents[3]))
    fix = "regenerate with `python -m deploy.gen_users`"
    if not users_file.is_file():
        report.add("users-drift", where, f"missing; {fix}")
        return
    text = users_file.read_text()
    try:
        committed = [d for d in _load_all(text) if d]
    except yaml.YAMLError as err:
        report.add("users-drift", where, f"not valid YAML ({err}); {fix}")
        return
    have = _by_user(committed)
    first = next(iter(have.values()), {})
    cluster = (
        first.get("metadata", {})
        .get("labels", {})
        .get("strimzi.io/cluster", gen_users.DEFAULT_CLUSTER)
    )
    auth = (first.get("spec", {}).get("authentication") or {}).get("type", gen_users.DEFAULT_AUTH)
    if auth not in gen_users.AUTH_TYPES:
        auth = gen_users.DEFAULT_AUTH
    expected_text = gen_users.render(cluster=cluster, auth=auth)
    want = _by_user([d for d in _load_all(expected_text) if d])

    before = len(report.findings)
    for name in sorted(set(want) - set(have)):
        report.add("users-drift", where, f"user {name} is missing; {fix}")
    for name in sorted(set(have) - set(want)):
        report.add("users-drift", where, f"user {name} is not a role's user; {fix}")
    for name in sorted(set(want) & set(have)):
        w = {_acl_key(r) for r in want[name]["spec"]["authorization"]["acls"]}
        h_auth = (have[name].get("spec") or {}).get("authorization") or {}
        h = {_acl_key(r) for r in h_auth.get("acls") or []}
        for acl in sorted(w - h):
            report.add("users-drift", where, f"user {name} lacks ACL {acl}; {fix}")
        for acl in sorted(h - w):
            report.add(
                "users-drift",
                where,
                f"user {name} has ACL {acl}, which the code does not need; {fix}",
            )
    if len(report.findings) == before and text != expected_text:
        report.add("users-drift", where, f"differs from the generator's output (hand edit?); {fix}")
