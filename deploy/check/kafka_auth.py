"""Kafka security of a render: what each role needs to connect, and KEDA connecting the same way.

Schema validation cannot see that a role told to speak ``SASL_SSL`` has no password to send, or
that KEDA, reading the same consumer group's lag, still speaks PLAINTEXT. Both fail only in the
cluster (a crash-looping pod naming ``KAFKA_SASL_PASSWORD``; a ScaledObject that never scales),
so these rules fail here instead:

- ``KAFKA_CREDENTIALS_DIR`` is a path the role's container actually mounts;
- a SASL role has a user name (``KAFKA_SASL_USERNAME``, or ``username``/``sasl.jaas.config`` in
  the mounted credentials) and a password (``password`` there, or a Secret reference);
- each KEDA Kafka trigger of a role says the role's ``sasl`` mechanism and ``tls`` mode, and
  its ``TriggerAuthentication`` exists and gives it a user name, a password and (with TLS and a
  CA of the role's) the CA, from the same Secrets the role mounts, so KEDA is the same user.
"""

from __future__ import annotations

from typing import Any

from .findings import Report
from .k8s import Obj, PodTemplate, ident, name_of, pod_template

KEDA_SASL = {"SCRAM-SHA-512": "scram_sha512", "SCRAM-SHA-256": "scram_sha256", "PLAIN": "plaintext"}


def _volume_files(volume: Obj) -> dict[str, str]:
    """File name in the mount -> Secret it comes from."""
    out: dict[str, str] = {}
    sources: list[dict[str, Any]] = []
    if "secret" in volume:
        sources = [{"secret": {**volume["secret"], "name": volume["secret"].get("secretName")}}]
    elif "projected" in volume:
        sources = volume["projected"].get("sources") or []
    for src in sources:
        sec = src.get("secret")
        if not sec:
            continue
        for item in sec.get("items") or []:
            out[str(item.get("path"))] = str(sec.get("name"))
    return out


class KafkaAuthCheck:
    def __init__(self, where: str, objects: list[Obj], report: Report) -> None:
        self.where = where
        self.objects = objects
        self.report = report

    def fail(self, obj: Obj, message: str) -> None:
        self.report.add("kafka-auth", f"{self.where} {ident(obj)}", message)

    def find(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.objects if o.get("kind") == kind and name_of(o) == name), None)

    def settings(self, pod: PodTemplate, container: Obj) -> dict[str, str]:
        data: dict[str, str] = {}
        for src in container.get("envFrom") or []:
            ref = src.get("configMapRef")
            if ref:
                cm = self.find("ConfigMap", ref.get("name", ""))
                data.update({k: str(v) for k, v in ((cm or {}).get("data") or {}).items()})
        for e in container.get("env") or []:
            if "value" in e:
                data[str(e["name"])] = str(e["value"])
            elif "valueFrom" in e:
                data[str(e["name"])] = "<from a reference>"
        return data

    def run(self) -> None:
        for obj in self.objects:
            pod = pod_template(obj)
            if pod is None:
                continue
            for c in pod.containers:
                self.check_container(pod, c)

    def check_container(self, pod: PodTemplate, c: Obj) -> None:
        s = self.settings(pod, c)
        proto = s.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT"
        sasl = proto.startswith("SASL_")
        tls = proto in ("SSL", "SASL_SSL")
        volumes = {v.get("name"): v for v in pod.spec.get("volumes") or []}
        mounts = {
            str(m.get("mountPath", "")).rstrip("/"): volumes.get(m.get("name"), {})
            for m in c.get("volumeMounts") or []
        }
        files: dict[str, str] = {}
        creds = s.get("KAFKA_CREDENTIALS_DIR", "").rstrip("/")
        if creds:
            if creds not in mounts:
                self.fail(
                    pod.owner,
                    f"KAFKA_CREDENTIALS_DIR {creds} is not mounted in container "
                    f"{c.get('name')!r}: the role would stop with a config error",
                )
            else:
                files = _volume_files(mounts[creds])
        if sasl:
            if not (s.get("KAFKA_SASL_USERNAME") or {"username", "sasl.jaas.config"} & set(files)):
                self.fail(
                    pod.owner,
                    f"{proto} needs a user name: KAFKA_SASL_USERNAME, or `username` or "
                    "`sasl.jaas.config` in KAFKA_CREDENTIALS_DIR",
                )
            if not (s.get("KAFKA_SASL_PASSWORD") or "password" in files):
                self.fail(
                    pod.owner,
                    f"{proto} needs a password: `password` in KAFKA_CREDENTIALS_DIR, or "
                    "KAFKA_SASL_PASSWORD from a Secret",
                )
        for so in self.objects:
            if so.get("kind") != "ScaledObject":
                continue
            ref = so.get("spec", {}).get("scaleTargetRef", {})
            if ref.get("name") != name_of(pod.owner):
                continue
            for trig in so["spec"].get("triggers") or []:
                if trig.get("type") == "kafka":
                    self.check_trigger(so, trig, s, files, sasl=sasl, tls=tls)

    def check_trigger(
        self,
        so: Obj,
        trig: Obj,
        s: dict[str, str],
        files: dict[str, str],
        *,
        sasl: bool,
        tls: bool,
    ) -> None:
        md = trig.get("metadata") or {}
        mech = s.get("KAFKA_SASL_MECHANISM", "").strip().upper()
        want_sasl = KEDA_SASL.get(mech, "?") if sasl else "none"
        if md.get("sasl", "none") != want_sasl:
            self.fail(
                so,
                f"kafka trigger sasl {md.get('sasl', 'none')!r}, but the role connects with "
                f"{s.get('KAFKA_SECURITY_PROTOCOL', 'PLAINTEXT')}/{mech or '-'}: set sasl: "
                f"{want_sasl}",
            )
        want_tls = "enable" if tls else "disable"
        if md.get("tls", "disable") != want_tls:
            self.fail(so, f"kafka trigger tls {md.get('tls', 'disable')!r}; set tls: {want_tls}")
        if not (sasl or tls):
            return
        auth_ref = (trig.get("authenticationRef") or {}).get("name")
        auth = self.find("TriggerAuthentication", auth_ref or "")
        if auth is None:
            self.fail(
                so,
                f"kafka trigger needs an authenticationRef to a TriggerAuthentication in this "
                f"render (got {auth_ref!r}): KEDA must connect as the role does",
            )
            return
        spec = auth.get("spec") or {}
        params = {r.get("parameter"): r for r in spec.get("secretTargetRef") or []}
        params.update({r.get("parameter"): r for r in spec.get("env") or []})
        needed = (["username", "password"] if sasl else []) + (
            ["ca"] if tls and ("ca.crt" in files or s.get("KAFKA_SSL_CA_FILE")) else []
        )
        for p in needed:
            if p not in params:
                self.fail(auth, f"no `{p}` parameter, which the {ident(so)} trigger needs")
        mounted = set(files.values())
        for p in ("password", "ca", "cert", "key"):
            ref = params.get(p)
            if ref and "key" in ref and mounted and ref.get("name") not in mounted:
                self.fail(
                    auth,
                    f"`{p}` comes from Secret {ref.get('name')!r}, which the role does not "
                    f"mount ({', '.join(sorted(mounted))}): KEDA would be another user",
                )


def check_kafka_auth(where: str, objects: list[Obj], report: Report) -> None:
    KafkaAuthCheck(where, objects, report).run()
