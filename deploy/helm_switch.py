"""A kustomize Component as a Helm switch: what it adds to the base, behind ``{{ if }}``.

The chart is generated from the kustomize base (``deploy/gen_helm.py``); the Kafka security of
``deploy/k8s/kafka-scram`` is a Component that overlays opt into. To give Helm users the same
option without writing it twice, the generator renders the base with and without the Component
and turns the difference into conditionals on one value (``kafka.scram``): list items it adds
(environment variables, volume mounts, volumes), map entries it adds (KEDA trigger metadata, an
``authenticationRef``), scalars it changes (the Kafka egress port), and objects it adds (the
TriggerAuthentications). Anything else it might change is refused, so the chart can never
silently differ from the Component.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.check.kubectl import Kubectl, kustomize

__all__ = ["Switch", "render_with_component"]

_LIST_MARK = re.compile(r"^(?P<indent>\s*)- (?P<mark>__SWITCH_\d+__)$", re.M)
_MAP_MARK = re.compile(r"^(?P<indent>\s*)(?P<mark>__SWITCH_\d+__): null$", re.M)
_SCALAR_MARK = re.compile(r"(?P<mark>__SWITCH_\d+__)")


def render_with_component(kubectl: Kubectl, k8s_dir: Path, base: str, component: str) -> str:
    """``kubectl kustomize`` of ``base`` plus ``component`` (a throw-away kustomization; kustomize
    only accepts relative paths, so it names both relative to itself)."""
    with tempfile.TemporaryDirectory(prefix="helm-switch-") as tmp:
        rel_base = os.path.relpath(k8s_dir / base, tmp)
        rel_comp = os.path.relpath(k8s_dir / component, tmp)
        Path(tmp, "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - {rel_base}\ncomponents:\n  - {rel_comp}\n"
        )
        return kustomize(kubectl, Path(tmp))


class UnsupportedChange(ValueError):
    """The Component changes something this translation cannot express as a conditional."""


def _dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=1000)


@dataclass
class Switch:
    """Marks one object's differences; :meth:`text` turns the marks into Helm conditionals."""

    condition: str  # e.g. ".Values.kafka.scram"
    _blocks: dict[str, tuple[str, Any, Any]] = field(default_factory=dict)

    def _mark(self, kind: str, old: Any, new: Any) -> str:
        mark = f"__SWITCH_{len(self._blocks)}__"
        self._blocks[mark] = (kind, old, new)
        return mark

    def diff(self, base: Any, changed: Any, where: str = "") -> Any:
        """``base`` with marks where ``changed`` adds to it or changes a scalar of it."""
        if isinstance(base, dict) and isinstance(changed, dict):
            gone = set(base) - set(changed)
            if gone:
                raise UnsupportedChange(f"{where}: removes {sorted(gone)}")
            out = {k: self.diff(v, changed[k], f"{where}.{k}") for k, v in base.items()}
            added = {k: v for k, v in changed.items() if k not in base}
            if added:
                out[self._mark("map", None, added)] = None
            return out
        if isinstance(base, list) and isinstance(changed, list):
            return self._diff_list(base, changed, where)
        if base != changed:
            if isinstance(base, dict | list) or isinstance(changed, dict | list):
                raise UnsupportedChange(f"{where}: changes a structure's type")
            return self._mark("scalar", base, changed)
        return base

    def _diff_list(self, base: list[Any], changed: list[Any], where: str) -> list[Any]:
        named = all(isinstance(i, dict) and "name" in i for i in [*base, *changed])
        if named and base:
            by_name = {i["name"]: i for i in changed}
            missing = [i["name"] for i in base if i["name"] not in by_name]
            if missing:
                raise UnsupportedChange(f"{where}: removes {missing}")
            out = [self.diff(i, by_name[i["name"]], f"{where}[{i['name']}]") for i in base]
            known = {i["name"] for i in base}
            added = [i for i in changed if i["name"] not in known]
            if added:
                out.append(self._mark("list", None, added))
            return out
        if len(base) != len(changed):
            raise UnsupportedChange(f"{where}: changes the length of an unnamed list")
        return [
            self.diff(b, c, f"{where}[{n}]")
            for n, (b, c) in enumerate(zip(base, changed, strict=True))
        ]

    def text(self, dumped: str) -> str:
        """The dumped, marked object with each mark replaced by its conditional."""

        def block(indent: str, items: Any) -> str:
            body = "".join(f"{indent}{line}\n" for line in _dump(items).splitlines())
            return f"{{{{- if {self.condition} }}}}\n{body}{{{{- end }}}}"

        def lst(m: re.Match[str]) -> str:
            return block(m["indent"], self._blocks[m["mark"]][2])

        def mp(m: re.Match[str]) -> str:
            return block(m["indent"], self._blocks[m["mark"]][2])

        def scalar(m: re.Match[str]) -> str:
            _, old, new = self._blocks[m["mark"]]
            return f"{{{{ if {self.condition} }}}}{json.dumps(new)}{{{{ else }}}}{json.dumps(old)}{{{{ end }}}}"

        out = _LIST_MARK.sub(lst, dumped)
        out = _MAP_MARK.sub(mp, out)
        out = _SCALAR_MARK.sub(scalar, out)
        return out

    def wrap(self, template: str) -> str:
        """A whole template that exists only with the switch on."""
        return f"{{{{- if {self.condition} }}}}\n{template}{{{{- end }}}}\n"
