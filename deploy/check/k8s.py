"""Small helpers over rendered Kubernetes objects (plain dicts): selectors, pod specs, quantities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}


def name_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", "?"))


def ident(obj: Obj) -> str:
    return f"{obj.get('kind')}/{name_of(obj)}"


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True, slots=True)
class PodTemplate:
    owner: Obj
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: Obj

    @property
    def containers(self) -> list[Obj]:
        return list(self.spec.get("containers") or [])

    @property
    def all_containers(self) -> list[Obj]:
        return list(self.spec.get("initContainers") or []) + self.containers


def pod_template(obj: Obj) -> PodTemplate | None:
    kind = obj.get("kind")
    if kind not in POD_KINDS:
        return None
    if kind == "Pod":
        meta, spec = obj.get("metadata", {}), obj.get("spec", {})
    elif kind == "CronJob":
        tpl = obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {})
        meta, spec = tpl.get("metadata", {}), tpl.get("spec", {})
    else:
        tpl = obj.get("spec", {}).get("template", {})
        meta, spec = tpl.get("metadata", {}), tpl.get("spec", {})
    return PodTemplate(
        obj, dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}), spec
    )


_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: object) -> float | None:
    """A resource quantity ("250m", "512Mi", 2) as a number, or None if unparsable."""
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value).strip())
    if not m:
        return None
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


def container_port(container: Obj, port: object) -> int | None:
    """Resolve a probe/Service port (number or name) against a container's ports."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    if isinstance(port, str) and port.isdigit():
        return int(port)
    return None


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means `latest`, which changes under you)"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return f"image {image!r} uses the `latest` tag; pin a version or a digest"
    return None
