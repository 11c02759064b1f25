"""What a check reports: one finding per broken rule, phrased so the fix is obvious."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Finding:
    """One violated rule. ``where`` names the render and object (or file and line)."""

    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"FAIL [{self.rule}] {self.where}: {self.message}"


@dataclass
class Report:
    """Everything one ``deploy-check`` run found, plus what it could not check and why."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    objects_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, rule: str, where: str, message: str) -> None:
        finding = Finding(rule, where, message)
        if finding not in self.findings:  # shared objects (a ConfigMap) are seen once per role
            self.findings.append(finding)

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    def render_text(self) -> str:
        lines = [f"note: {n}" for n in self.notes]
        lines += [f"SKIPPED: {s}" for s in self.skipped]
        lines += [str(f) for f in self.findings]
        verdict = "ok" if self.ok else f"{len(self.findings)} problem(s)"
        lines.append(f"deploy-check: {self.objects_checked} objects checked, {verdict}")
        return "\n".join(lines)
