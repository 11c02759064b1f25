"""Breaking changes between the last released record schemas and the current ones.

Structural, not textual: two schemas are walked side by side (``$ref`` resolved within each
document) and a change is *breaking* when a reader or writer coded against the released schema
could fail on the new one (docs/schemas.md, "Compatibility"):

- a field removed, or a new required field (or an optional one made required);
- a type changed (``string`` -> ``integer``, ``integer`` -> ``string | null``: a reader of the old
  type meets a value it does not expect);
- a constant changed (a record's ``type``), an enum value removed, or a free value restricted
  to an enum;
- an object closed to unknown fields (``additionalProperties: false`` where it was open);
- a record type removed altogether.

Adding an optional field, adding an enum value and relaxing a constraint are not breaking. A
record whose ``schema_version`` default went up may change in any way: that is what the bump
announces. Descriptions, titles and defaults are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Break",
    "breaking_changes",
    "compare_released",
    "latest_release",
    "schema_version",
]

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Break:
    """One breaking change: the record, where in it, and what changed."""

    record: str
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.record}: {self.path or '(root)'}: {self.what}"


def _resolve(doc: Schema, node: Any) -> Schema:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 50:
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            break
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
        seen += 1
    if isinstance(node, dict) and len(node.get("allOf") or []) == 1:
        return _resolve(doc, node["allOf"][0])
    return node if isinstance(node, dict) else {}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _variants(doc: Schema, node: Schema) -> list[Schema]:
    node = _resolve(doc, node)
    alts = node.get("anyOf") or node.get("oneOf")
    if not alts:
        return [node]
    out: list[Schema] = []
    for alt in alts:
        out += _variants(doc, alt)
    return out


def _types(doc: Schema, node: Schema) -> frozenset[str]:
    out: set[str] = set()
    for v in _variants(doc, node):
        if "type" in v:
            t = v["type"]
            out.update(t if isinstance(t, list) else [t])
        elif "const" in v:
            out.add(_json_type(v["const"]))
        elif "enum" in v:
            out.update(_json_type(x) for x in v["enum"])
        elif "properties" in v or "additionalProperties" in v:
            out.add("object")
        else:
            out.add("any")
    return frozenset(out)


def _objects(doc: Schema, node: Schema) -> list[Schema]:
    return [v for v in _variants(doc, node) if "object" in _types(doc, v)]


def _values(doc: Schema, node: Schema) -> tuple[set[Any], bool] | None:
    """The allowed constant values (``const``/``enum``) of a node; None when unrestricted."""
    found: set[Any] = set()
    for v in _variants(doc, node):
        if "const" in v:
            found.add(json.dumps(v["const"]))
        elif "enum" in v:
            found.update(json.dumps(x) for x in v["enum"])
        elif _types(doc, v) != frozenset({"null"}):
            return None
    return (found, True) if found else None


def _open(node: Schema) -> bool:
    return node.get("additionalProperties", True) is not False


class _Walker:
    def __init__(self, record: str, old: Schema, new: Schema) -> None:
        self.record = record
        self.old = old
        self.new = new
        self.found: list[Break] = []
        self._seen: set[tuple[int, int]] = set()

    def add(self, path: str, what: str) -> None:
        self.found.append(Break(self.record, path, what))

    def walk(self, o: Schema, n: Schema, path: str) -> None:
        o, n = _resolve(self.old, o), _resolve(self.new, n)
        if (id(o), id(n)) in self._seen:  # recursive models
            return
        self._seen.add((id(o), id(n)))
        ot, nt = _types(self.old, o), _types(self.new, n)
        if ot != nt:
            self.add(path, f"type changed: {'|'.join(sorted(ot))} -> {'|'.join(sorted(nt))}")
            return
        ov, nv = _values(self.old, o), _values(self.new, n)
        if ov is not None and nv is not None:
            removed = ov[0] - nv[0]
            if removed:
                self.add(path, f"value(s) no longer allowed: {', '.join(sorted(removed))}")
        elif ov is None and nv is not None:
            self.add(path, f"restricted to {', '.join(sorted(nv[0]))}")
        self._objects(o, n, path)
        self._arrays(o, n, path)

    def _objects(self, o: Schema, n: Schema, path: str) -> None:
        oo, no = _objects(self.old, o), _objects(self.new, n)
        if not oo or not no:
            return
        if len(oo) > 1 or len(no) > 1:  # a union of record models: pair them by title
            new_by_title = {v.get("title"): v for v in no}
            for v in oo:
                match = new_by_title.get(v.get("title"))
                if match is None:
                    self.add(path, f"variant {v.get('title')!r} removed")
                else:
                    self._object(v, match, path)
            return
        self._object(oo[0], no[0], path)

    def _object(self, o: Schema, n: Schema, path: str) -> None:
        po, pn = o.get("properties") or {}, n.get("properties") or {}
        ro, rn = set(o.get("required") or []), set(n.get("required") or [])
        for key, sub in po.items():
            where = f"{path}.{key}" if path else key
            if key not in pn:
                self.add(where, "field removed")
            else:
                self.walk(sub, pn[key], where)
        for key in sorted(rn - ro):
            where = f"{path}.{key}" if path else key
            self.add(where, "optional field made required" if key in po else "new required field")
        if _open(o) and not _open(n):
            self.add(path, "closed to unknown fields (additionalProperties: false)")
        ao, an = o.get("additionalProperties"), n.get("additionalProperties")
        if isinstance(ao, dict) and isinstance(an, dict):
            self.walk(ao, an, f"{path}.*" if path else "*")

    def _arrays(self, o: Schema, n: Schema, path: str) -> None:
        for v_o in _variants(self.old, o):
            if "array" not in _types(self.old, v_o):
                continue
            v_n = next((v for v in _variants(self.new, n) if "array" in _types(self.new, v)), None)
            if v_n is None:
                return
            if isinstance(v_o.get("items"), dict) and isinstance(v_n.get("items"), dict):
                self.walk(v_o["items"], v_n["items"], f"{path}[]")
            po, pn = v_o.get("prefixItems") or [], v_n.get("prefixItems") or []
            if len(po) != len(pn):
                self.add(path, f"tuple length changed: {len(po)} -> {len(pn)}")
            for i, (a, b) in enumerate(zip(po, pn, strict=False)):
                self.walk(a, b, f"{path}[{i}]")
            return


def schema_version(doc: Schema) -> int | None:
    """The record's ``schema_version`` (its default), or None for a record without one."""
    prop = (doc.get("properties") or {}).get("schema_version")
    if not isinstance(prop, dict):
        return None
    value = prop.get("const", prop.get("default"))
    return value if isinstance(value, int) else None


def breaking_changes(record: str, old: Schema, new: Schema) -> list[Break]:
    """Breaking changes from ``old`` to ``new`` (standalone schema documents of one record)."""
    ov, nv = schema_version(old), schema_version(new)
    if ov is not None and nv is not None and nv > ov:
        return []  # announced by the bump
    walker = _Walker(record, old, new)
    walker.walk(old, new, "")
    return walker.found


def latest_release(released_root: Path) -> Path | None:
    """The newest release directory under ``released_root`` (named by version, e.g. 0.1.0)."""

    def key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) if x.isdigit() else -1 for x in p.name.split("."))

    dirs = [p for p in released_root.iterdir() if p.is_dir() and (p / "index.json").is_file()]
    return max(dirs, key=key) if dirs else None


def compare_released(baseline: Path, current: dict[str, Schema]) -> list[Break]:
    """Every breaking change of ``current`` (schemas by name) against a released baseline."""
    index = json.loads((baseline / "index.json").read_text(encoding="utf-8"))
    out: list[Break] = []
    for name, entry in sorted(index["schemas"].items()):
        old = json.loads((baseline / entry["file"]).read_text(encoding="utf-8"))
        if name not in current:
            out.append(Break(name, "", "record type removed"))
            continue
        out += breaking_changes(name, old, current[name])
    return out
