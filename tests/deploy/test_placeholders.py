"""A production overlay with an empty required setting or an example host is refused.

The repository's ``overlays/prod.example`` is a template; these tests copy it the way a user
does (``cp -r prod.example prod``) and check that the copy is enforced until it is filled in.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from deploy.check import Report

from .helpers import assert_fails

Check = Callable[[Path], Report]

REAL_VALUES = {
    "registry.example.com/voice-orchestrator": "registry.acme.test/voice-orchestrator",
    "VONAGE_APPLICATION_ID=": "VONAGE_APPLICATION_ID=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "VONAGE_API_KEY=": "VONAGE_API_KEY=abcd1234",
    "webhooks.example.com": "webhooks.acme.test",
}


def _copy_template(deploy_dir: Path, name: str = "prod") -> Path:
    overlays = deploy_dir / "k8s" / "overlays"
    target = overlays / name
    shutil.copytree(overlays / "prod.example", target)
    return target


def test_template_passes_with_its_placeholders_as_notes(check: Check) -> None:
    from deploy.check import DEPLOY_DIR

    report = check(DEPLOY_DIR)
    assert report.ok, report.render_text()
    assert any("overlays/prod.example (template)" in n for n in report.notes)


def test_a_copy_of_the_template_is_refused_until_filled_in(deploy_copy: Path, check: Check) -> None:
    prod = _copy_template(deploy_copy)
    report = check(deploy_copy)
    assert_fails(
        report,
        "placeholders",
        "overlays/prod ConfigMap/orchestrator-settings-",
        "required setting VONAGE_APPLICATION_ID is empty (set it in deploy/k8s/overlays/prod/"
        "kustomization.yaml)",
        "required setting VONAGE_API_KEY is empty",
        "setting PUBLIC_BASE_URL uses the example host 'webhooks.example.com'",
        "overlays/prod Deployment/orchestrator-ingress: spec.template.spec.containers[0].image "
        "uses the example host 'registry.example.com' (set it with `images:` in "
        "deploy/k8s/overlays/prod/kustomization.yaml)",
        "overlays/prod Ingress/orchestrator-webhooks: spec.rules[0].host uses the example host",
    )
    kustomization = prod / "kustomization.yaml"
    text = kustomization.read_text()
    for old, new in REAL_VALUES.items():
        text = text.replace(old, new)
    kustomization.write_text(text)
    filled = check(deploy_copy)
    assert filled.ok, filled.render_text()


def test_an_empty_setting_from_the_base_names_the_base_file(
    deploy_copy: Path, check: Check
) -> None:
    prod = _copy_template(deploy_copy, "eu-prod")
    kustomization = prod / "kustomization.yaml"
    text = kustomization.read_text()
    for old, new in REAL_VALUES.items():
        text = text.replace(old, new)
    # The user dropped the literal: the empty value now comes from the base's settings.env.
    text = re.sub(r"\n *- VONAGE_API_KEY=abcd1234[^\n]*", "", text)
    kustomization.write_text(text)
    assert_fails(
        check(deploy_copy),
        "placeholders",
        "overlays/eu-prod ConfigMap/",
        "required setting VONAGE_API_KEY is empty (set it in deploy/k8s/base/settings.env)",
    )


def test_dev_marker_is_what_makes_dev_lenient(deploy_copy: Path, check: Check) -> None:
    ns = deploy_copy / "k8s" / "overlays" / "dev" / "namespace.yaml"
    ns.write_text(ns.read_text().replace("voice-orchestrator/environment: development", ""))
    assert_fails(
        check(deploy_copy),
        "placeholders",
        "overlays/dev ConfigMap/",
        "required setting VONAGE_APPLICATION_ID is empty",
    )
