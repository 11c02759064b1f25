"""Rules over one rendered overlay: what schema validation cannot see.

Schemas say a field is well-formed; these rules say the deployment is right for this product:
probes on the roles' health endpoints, a grace period that fits the drain, autoscalers bounded by
partitions, static membership, no literal secrets, least-privilege pods and network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .contract import (
    COMPONENT_LABEL,
    DRAIN_SECONDS,
    EXTRA_ENV,
    GRACE_MARGIN_SECONDS,
    IMAGE_UID,
    ROLE_BY_COMPONENT,
    ROLES,
    Role,
)
from .findings import Report
from .k8s import (
    Obj,
    PodTemplate,
    container_port,
    ident,
    image_problem,
    name_of,
    pod_template,
    quantity,
    selects,
)
from .kafka_auth import check_kafka_auth

SECRET_NAME_RE = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIAL)", re.I)
PEM_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}


@dataclass(frozen=True, slots=True)
class SettingsNames:
    """Environment names the product reads (from ``orchestrator.config.Settings``)."""

    env: frozenset[str]
    secret_fields: frozenset[str]  # lower-case field names typed SecretStr

    @classmethod
    def load(cls) -> SettingsNames:
        from orchestrator.config import CONFIG_FILE_ENV, Settings

        fields = Settings.model_fields
        env = {name.upper() for name in fields} | EXTRA_ENV | {CONFIG_FILE_ENV}
        secret = {n for n, f in fields.items() if "SecretStr" in repr(f.annotation)}
        return cls(frozenset(env), frozenset(secret))

    def is_secret(self, env_name: str) -> bool:
        """A SecretStr setting, or an unknown name that looks like one (``*_TOKEN``...)."""
        if env_name.lower() in self.secret_fields:
            return True
        return env_name not in self.env and bool(SECRET_NAME_RE.search(env_name))

    def known(self, env_name: str) -> bool:
        return env_name in self.env or env_name.startswith("PYTHON")


class RenderCheck:
    """All rules over one render; findings go to the shared :class:`Report`."""

    def __init__(
        self, where: str, objects: list[Obj], report: Report, settings: SettingsNames
    ) -> None:
        self.where = where
        self.objects = objects
        self.report = report
        self.settings = settings

    # -- plumbing ---------------------------------------------------------------------------------

    def fail(self, rule: str, obj: Obj | str, message: str) -> None:
        what = obj if isinstance(obj, str) else ident(obj)
        self.report.add(rule, f"{self.where} {what}", message)

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") in kinds]

    def find(self, kind: str, name: str) -> Obj | None:
        for o in self.objects:
            if o.get("kind") == kind and name_of(o) == name:
                return o
        return None

    def pods(self) -> list[PodTemplate]:
        return [p for o in self.objects if (p := pod_template(o)) is not None]

    def settings_configmaps(self, pod: PodTemplate) -> dict[str, str]:
        data: dict[str, str] = {}
        for c in pod.containers:
            for src in c.get("envFrom") or []:
                ref = src.get("configMapRef")
                if ref:
                    cm = self.find("ConfigMap", ref.get("name", ""))
                    data.update((cm or {}).get("data") or {})
        return data

    # -- entry point ------------------------------------------------------------------------------

    def run(self) -> None:
        self.check_literal_secrets()
        roles_seen: dict[str, PodTemplate] = {}
        for pod in self.pods():
            component = pod.labels.get(COMPONENT_LABEL, "")
            role = ROLE_BY_COMPONENT.get(component)
            if role is None:
                self.fail(
                    "roles",
                    pod.owner,
                    f"pod template label {COMPONENT_LABEL}={component!r} is not a known role "
                    f"({', '.join(r.component for r in ROLES)})",
                )
                continue
            if component in roles_seen:
                self.fail("roles", pod.owner, f"a second workload for role {component!r}")
            roles_seen[component] = pod
            self.check_pod(role, pod)
            self.check_scaling(role, pod)
        for role in ROLES:
            if role.component not in roles_seen:
                self.fail("roles", f"role {role.component}", "no workload for this role")
        self.check_one_image(list(roles_seen.values()))
        self.check_autoscaler_targets()
        self.check_network(roles_seen)
        self.check_services()
        self.check_ingresses()

    # -- per pod ----------------------------------------------------------------------------------

    def main_container(self, role: Role, pod: PodTemplate) -> Obj | None:
        for c in pod.containers:
            if tuple(c.get("args") or ())[: len(role.args)] == role.args:
                return c
        self.fail(
            "role-args",
            pod.owner,
            f"no container runs `orchestrator {' '.join(role.args)}` (args must start with "
            f"{list(role.args)}; the image's entrypoint is `orchestrator`)",
        )
        return None

    def check_pod(self, role: Role, pod: PodTemplate) -> None:
        owner, spec = pod.owner, pod.spec
        main = self.main_container(role, pod)
        if main is not None:
            self.check_args_and_ports(role, pod, main)
            self.check_probes(role, pod, main)
        self.check_security(pod)
        self.check_resources(pod)
        self.check_grace(role, pod)
        self.check_env(pod)
        if role.is_consumer:
            self.check_static_membership(role, pod)
        self.check_spread(pod)
        self.check_pdb(pod)
        if spec.get("automountServiceAccountToken") is not False:
            self.fail(
                "service-account",
                owner,
                "automountServiceAccountToken must be false: the roles never call the "
                "Kubernetes API, so a mounted token is only something to steal",
            )
        sa_name = spec.get("serviceAccountName") or "default"
        sa = self.find("ServiceAccount", sa_name)
        if sa_name == "default" or sa is None:
            self.fail(
                "service-account",
                owner,
                f"serviceAccountName {sa_name!r} is not a ServiceAccount of this render",
            )
        elif sa.get("automountServiceAccountToken") is not False:
            self.fail("service-account", sa, "automountServiceAccountToken must be false")
        ann = pod.annotations
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(
            role.port
        ):
            self.fail(
                "metrics",
                owner,
                f'pod template needs prometheus.io/scrape: "true" and prometheus.io/port: '
                f'"{role.port}" (the role serves /metrics there)',
            )

    def check_args_and_ports(self, role: Role, pod: PodTemplate, c: Obj) -> None:
        args = [str(a) for a in c.get("args") or []]
        if role.port_flag not in args or args.index(role.port_flag) + 1 >= len(args):
            self.fail("role-args", pod.owner, f"args {args} lack `{role.port_flag} {role.port}`")
        elif args[args.index(role.port_flag) + 1] != str(role.port):
            got = args[args.index(role.port_flag) + 1]
            self.fail(
                "role-args",
                pod.owner,
                f"{role.port_flag} {got}, but the {role.component} contract port is {role.port} "
                "(probes, Service and scrape annotations use it)",
            )
        if role.serves_traffic:
            host = args[args.index("--host") + 1] if "--host" in args[:-1] else None
            if host not in ("0.0.0.0", "::"):
                self.fail(
                    "role-args",
                    pod.owner,
                    f"--host is {host!r}: the role must listen on 0.0.0.0 to be reachable "
                    "from the Service (the CLI default is 127.0.0.1)",
                )
        ports = {int(p.get("containerPort", 0)) for p in c.get("ports") or []}
        if role.port not in ports:
            self.fail(
                "role-args",
                pod.owner,
                f"container declares no containerPort {role.port} (probes and Services need it)",
            )

    def check_probes(self, role: Role, pod: PodTemplate, c: Obj) -> None:
        wanted = {
            "livenessProbe": (
                "/healthz",
                "without it a wedged process is never restarted",
            ),
            "readinessProbe": (
                "/readyz",
                "without it a pod counts as ready (and a rolling update moves on) before it "
                "has joined its group and restored its state",
            ),
        }
        for probe_name, (path, why) in wanted.items():
            probe = c.get(probe_name)
            if not probe:
                self.fail(
                    "probes", pod.owner, f"container {c.get('name')!r} has no {probe_name}: {why}"
                )
                continue
            http = probe.get("httpGet")
            if not http:
                self.fail(
                    "probes",
                    pod.owner,
                    f"{probe_name} must be an httpGet on {path} (the role's health endpoint)",
                )
                continue
            if http.get("path") != path:
                self.fail(
                    "probes",
                    pod.owner,
                    f"{probe_name} path is {http.get('path')!r}, expected {path}",
                )
            port = container_port(c, http.get("port"))
            if port != role.port:
                self.fail(
                    "probes",
                    pod.owner,
                    f"{probe_name} port {http.get('port')!r} resolves to {port}, but the "
                    f"{role.component} serves health on {role.port}",
                )

    def check_security(self, pod: PodTemplate) -> None:
        owner, spec = pod.owner, pod.spec
        psc = spec.get("securityContext") or {}
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                self.fail("security", owner, f"{flag} must not be set")
        for c in pod.all_containers:
            csc = c.get("securityContext") or {}
            cname = f"container {c.get('name')!r}"

            def eff(key: str, csc: Obj = csc) -> Any:
                return csc[key] if key in csc else psc.get(key)

            if eff("runAsNonRoot") is not True:
                self.fail("security", owner, f"{cname}: runAsNonRoot must be true")
            uid = eff("runAsUser")
            if uid is not None and int(uid) != IMAGE_UID:
                self.fail(
                    "security",
                    owner,
                    f"{cname}: runAsUser {uid} differs from the image's USER {IMAGE_UID}"
                    + (" (0 is root)" if int(uid) == 0 else ""),
                )
            seccomp = (eff("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                self.fail("security", owner, f"{cname}: seccompProfile.type must be RuntimeDefault")
            if csc.get("allowPrivilegeEscalation") is not False:
                self.fail("security", owner, f"{cname}: allowPrivilegeEscalation must be false")
            if csc.get("privileged"):
                self.fail("security", owner, f"{cname}: privileged must not be true")
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                self.fail("security", owner, f"{cname}: capabilities.drop must contain ALL")
            if caps.get("add"):
                self.fail("security", owner, f"{cname}: capabilities.add {caps['add']} not allowed")
            if csc.get("readOnlyRootFilesystem") is not True:
                self.fail(
                    "security",
                    owner,
                    f"{cname}: readOnlyRootFilesystem must be true (write to the /tmp emptyDir)",
                )
            problem = image_problem(str(c.get("image", "")))
            if problem:
                self.fail("image", owner, f"{cname}: {problem}")

    def check_resources(self, pod: PodTemplate) -> None:
        for c in pod.all_containers:
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            missing = [f"requests.{k}" for k in ("cpu", "memory") if k not in req]
            missing += [f"limits.{k}" for k in ("memory",) if k not in lim]
            if missing:
                self.fail(
                    "resources",
                    pod.owner,
                    f"container {c.get('name')!r} lacks {', '.join(missing)} (the scheduler and "
                    "the HPA's CPU utilisation need requests; a memory limit contains a leak)",
                )
            for k in ("cpu", "memory"):
                r, li = quantity(req.get(k)), quantity(lim.get(k))
                if r is not None and li is not None and r > li:
                    self.fail(
                        "resources",
                        pod.owner,
                        f"container {c.get('name')!r}: requests.{k} {req[k]} > limits.{k} {lim[k]}",
                    )

    def prestop_seconds(self, c: Obj) -> int | None:
        pre = (c.get("lifecycle") or {}).get("preStop")
        if not pre:
            return None
        if "sleep" in pre:
            return int(pre["sleep"].get("seconds", 0))
        cmd = [str(x) for x in (pre.get("exec") or {}).get("command") or []]
        if cmd and cmd[0].endswith("sleep") and len(cmd) > 1 and cmd[1].isdigit():
            return int(cmd[1])
        return 0

    def check_grace(self, role: Role, pod: PodTemplate) -> None:
        grace = int(pod.spec.get("terminationGracePeriodSeconds", 30))
        for c in pod.containers:
            pre = self.prestop_seconds(c)
            if pre is None and role.serves_traffic:
                self.fail(
                    "graceful-shutdown",
                    pod.owner,
                    f"container {c.get('name')!r} has no preStop delay: it would stop accepting "
                    "while the endpoint is still in the load balancers (connection errors)",
                )
            needed = (pre or 0) + DRAIN_SECONDS + GRACE_MARGIN_SECONDS
            if grace < needed:
                self.fail(
                    "graceful-shutdown",
                    pod.owner,
                    f"terminationGracePeriodSeconds {grace} < preStop {pre or 0} s + drain "
                    f"{DRAIN_SECONDS} s + margin {GRACE_MARGIN_SECONDS} s = {needed} s: SIGKILL "
                    "would cut the drain (uncommitted offsets, re-processing)",
                )

    def check_env(self, pod: PodTemplate) -> None:
        secret_mounts: dict[str, Obj] = {}
        volumes = {v.get("name"): v for v in pod.spec.get("volumes") or []}
        for c in pod.containers:
            for vm in c.get("volumeMounts") or []:
                vol = volumes.get(vm.get("name"))
                if vol and "secret" in vol:
                    secret_mounts[str(vm.get("mountPath", "")).rstrip("/")] = vol
            for src in c.get("envFrom") or []:
                ref = src.get("configMapRef")
                if not ref:
                    continue
                cm = self.find("ConfigMap", ref.get("name", ""))
                if cm is None:
                    self.fail(
                        "config",
                        pod.owner,
                        f"envFrom ConfigMap {ref.get('name')!r} is not in this render",
                    )
                    continue
                for key in cm.get("data") or {}:
                    if not self.settings.known(key):
                        self.fail(
                            "config",
                            cm,
                            f"key {key} is not a setting of orchestrator.config.Settings "
                            "(unknown variables are ignored, so a typo is silently lost)",
                        )
            env_values: dict[str, str] = {}
            for e in c.get("env") or []:
                name = str(e.get("name"))
                if not self.settings.known(name):
                    self.fail(
                        "config",
                        pod.owner,
                        f"env {name} is not a setting of orchestrator.config.Settings (unknown "
                        "variables are ignored, so a typo is silently lost)",
                    )
                if "value" in e:
                    env_values[name] = str(e["value"])
                    if self.settings.is_secret(name) and not self._is_secret_path(
                        str(e["value"]), secret_mounts
                    ):
                        self.fail(
                            "secrets",
                            pod.owner,
                            f"env {name} has a literal value: secrets must come from the mounted "
                            "Secret (a file in ORCHESTRATOR_SECRETS_DIR, or a path into it)",
                        )
                vf = e.get("valueFrom") or {}
                if self.settings.is_secret(name) and "configMapKeyRef" in vf:
                    self.fail("secrets", pod.owner, f"env {name} reads a secret from a ConfigMap")
            self._check_secret_files(pod, secret_mounts, env_values)

    @staticmethod
    def _is_secret_path(value: str, mounts: dict[str, Obj]) -> bool:
        return any(value.startswith(m + "/") for m in mounts)

    def _check_secret_files(
        self, pod: PodTemplate, mounts: dict[str, Obj], env_values: dict[str, str]
    ) -> None:
        secrets_dir = env_values.get("ORCHESTRATOR_SECRETS_DIR", "").rstrip("/")
        for mount, vol in mounts.items():
            for item in vol["secret"].get("items") or []:
                path = f"{mount}/{item.get('path')}"
                by_env = path in env_values.values()
                by_dir = mount == secrets_dir and str(item.get("path")).lower() in (
                    self.settings.secret_fields
                )
                if not (by_env or by_dir):
                    self.fail(
                        "secrets",
                        pod.owner,
                        f"secret file {path} (key {item.get('key')!r}) is read by nothing: it is "
                        "neither a setting name in ORCHESTRATOR_SECRETS_DIR nor a path an env "
                        "variable points at",
                    )

    def check_static_membership(self, role: Role, pod: PodTemplate) -> None:
        if pod.owner.get("kind") != "StatefulSet":
            self.fail(
                "static-membership",
                pod.owner,
                f"consumer role {role.component} must be a StatefulSet: its stable pod name is "
                "the Kafka group.instance.id; a Deployment's random pod names make every restart "
                "a new member (a rebalance plus a ghost member until the session times out)",
            )
        for c in pod.containers:
            env = {e.get("name"): e for e in c.get("env") or []}
            ref = ((env.get("INSTANCE_ID") or {}).get("valueFrom") or {}).get("fieldRef") or {}
            if ref.get("fieldPath") != "metadata.name":
                self.fail(
                    "static-membership",
                    pod.owner,
                    f"container {c.get('name')!r}: INSTANCE_ID must come from the downward API "
                    "(fieldRef metadata.name) so each pod has its own stable group.instance.id",
                )

    def check_spread(self, pod: PodTemplate) -> None:
        keys = {
            t.get("topologyKey")
            for t in pod.spec.get("topologySpreadConstraints") or []
            if selects(t.get("labelSelector"), pod.labels)
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
            if key not in keys:
                self.fail(
                    "topology",
                    pod.owner,
                    f"no topologySpreadConstraint on {key} selecting these pods (a node or zone "
                    "loss could take every replica)",
                )

    def check_pdb(self, pod: PodTemplate) -> None:
        pdbs = [
            p
            for p in self.of_kind("PodDisruptionBudget")
            if selects(p.get("spec", {}).get("selector"), pod.labels)
        ]
        if not pdbs:
            self.fail(
                "disruption",
                pod.owner,
                "no PodDisruptionBudget selects these pods (a node drain may evict all at once)",
            )

    # -- scaling ----------------------------------------------------------------------------------

    def autoscalers_of(self, owner: Obj) -> list[Obj]:
        out = []
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            ref = hpa.get("spec", {}).get("scaleTargetRef", {})
            if ref.get("kind") == owner.get("kind") and ref.get("name") == name_of(owner):
                out.append(hpa)
        for so in self.of_kind("ScaledObject"):
            ref = so.get("spec", {}).get("scaleTargetRef", {})
            if ref.get("kind", "Deployment") == owner.get("kind") and ref.get("name") == name_of(
                owner
            ):
                out.append(so)
        return out

    def check_scaling(self, role: Role, pod: PodTemplate) -> None:
        owner = pod.owner
        scalers = self.autoscalers_of(owner)
        kinds = sorted({s["kind"] for s in scalers})
        partitions = role.topic.partitions if role.topic else None
        if len(scalers) > 1:
            self.fail(
                "autoscaling",
                owner,
                f"{len(scalers)} autoscalers target it ({', '.join(map(ident, scalers))}); they "
                "would fight over the replica count",
            )
        if scalers and "replicas" in owner.get("spec", {}):
            self.fail(
                "autoscaling",
                owner,
                f"spec.replicas is set although {ident(scalers[0])} owns the replica count: "
                "every `kubectl apply` would reset the scale",
            )
        if role.scaler == "hpa":
            if kinds != ["HorizontalPodAutoscaler"]:
                self.fail("autoscaling", owner, "expected a HorizontalPodAutoscaler on CPU")
            for hpa in scalers:
                self._check_hpa(hpa)
        elif role.scaler == "keda" and kinds != ["ScaledObject"]:
            self.fail("autoscaling", owner, "expected a KEDA ScaledObject on consumer lag")
        for so in scalers:
            if so["kind"] == "ScaledObject":
                self._check_scaled_object(role, pod, so)
        if not scalers and partitions is not None:
            replicas = int(owner.get("spec", {}).get("replicas", 1))
            if replicas > partitions:
                topic = role.topic.name if role.topic else "?"
                self.fail(
                    "replicas",
                    owner,
                    f"replicas {replicas} exceeds the {partitions} partitions of {topic} "
                    "(contracts/topics.py): the extra consumers would sit idle",
                )

    def _check_hpa(self, hpa: Obj) -> None:
        spec = hpa.get("spec", {})
        lo, hi = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 0))
        if lo > hi:
            self.fail("autoscaling", hpa, f"minReplicas {lo} > maxReplicas {hi}")
        cpu = [
            m
            for m in spec.get("metrics") or []
            if m.get("type") == "Resource" and m.get("resource", {}).get("name") == "cpu"
        ]
        if not cpu:
            self.fail("autoscaling", hpa, "no CPU resource metric (the ingress scales on CPU)")

    def _check_scaled_object(self, role: Role, pod: PodTemplate, so: Obj) -> None:
        spec = so.get("spec", {})
        max_r = int(spec.get("maxReplicaCount", 100))  # KEDA's default is 100
        min_r = int(spec.get("minReplicaCount", 0))
        if min_r > max_r:
            self.fail("keda", so, f"minReplicaCount {min_r} > maxReplicaCount {max_r}")
        if role.topic is not None and max_r > role.topic.partitions:
            self.fail(
                "keda-partitions",
                so,
                f"maxReplicaCount {max_r} exceeds the {role.topic.partitions} partitions of "
                f"{role.topic.name} (contracts/topics.py): consumers beyond that get no partition "
                "and sit idle; lower it or add partitions",
            )
        settings = self.settings_configmaps(pod)
        prefix = settings.get("TOPIC_PREFIX", "")
        bootstrap = settings.get("KAFKA_BOOTSTRAP_SERVERS")
        kafka = [t for t in spec.get("triggers") or [] if t.get("type") == "kafka"]
        if not kafka:
            self.fail("keda", so, "no kafka trigger (the consumer roles scale on consumer lag)")
        for t in kafka:
            md = t.get("metadata") or {}
            if role.group_id and md.get("consumerGroup") != role.group_id:
                self.fail(
                    "keda",
                    so,
                    f"consumerGroup {md.get('consumerGroup')!r}, but the {role.component} "
                    f"consumes as {role.group_id!r}: KEDA would read some other group's lag",
                )
            if role.topic is not None and md.get("topic") != prefix + role.topic.name:
                self.fail(
                    "keda",
                    so,
                    f"topic {md.get('topic')!r}, expected {prefix + role.topic.name!r} "
                    f"(TOPIC_PREFIX {prefix!r} + {role.topic.name})",
                )
            if bootstrap and md.get("bootstrapServers") not in (None, bootstrap):
                self.fail(
                    "keda",
                    so,
                    f"bootstrapServers {md.get('bootstrapServers')!r} differs from the "
                    f"KAFKA_BOOTSTRAP_SERVERS setting {bootstrap!r}",
                )
            if str(md.get("allowIdleConsumers", "false")).lower() == "true":
                self.fail(
                    "keda-partitions", so, "allowIdleConsumers must stay false (idle consumers)"
                )

    def check_autoscaler_targets(self) -> None:
        for scaler in self.of_kind("HorizontalPodAutoscaler", "ScaledObject"):
            ref = scaler.get("spec", {}).get("scaleTargetRef", {})
            kind = ref.get("kind", "Deployment")
            if self.find(kind, ref.get("name", "")) is None:
                self.fail(
                    "autoscaling",
                    scaler,
                    f"scaleTargetRef {kind}/{ref.get('name')} is not in this render",
                )

    def check_one_image(self, pods: list[PodTemplate]) -> None:
        images = {str(c.get("image")) for p in pods for c in p.containers}
        if len(images) > 1:
            self.fail(
                "image",
                "roles",
                f"the roles use {len(images)} different images {sorted(images)}; one image "
                "serves every role, so they must match",
            )

    # -- secrets ----------------------------------------------------------------------------------

    def check_literal_secrets(self) -> None:
        for obj in self.of_kind("Secret"):
            if obj.get("data") or obj.get("stringData"):
                self.fail(
                    "secrets",
                    obj,
                    "a Secret with literal data is in the manifests; create it outside the repo "
                    "(kubectl create secret, External Secrets, Sealed Secrets: docs/deploy.md)",
                )
        for cm in self.of_kind("ConfigMap"):
            for key, value in (cm.get("data") or {}).items():
                if self.settings.is_secret(key) and str(value).strip():
                    self.fail(
                        "secrets",
                        cm,
                        f"ConfigMap key {key} holds a secret value; ConfigMaps are not secret "
                        "(readable by anyone who can read the namespace's config)",
                    )
        for obj in self.objects:
            for value in _strings(obj):
                if PEM_RE.search(value):
                    self.fail("secrets", obj, "contains a PEM private key")
                    break

    # -- network ----------------------------------------------------------------------------------

    def check_network(self, roles: dict[str, PodTemplate]) -> None:
        policies = self.of_kind("NetworkPolicy")
        for component, pod in roles.items():
            deny = [
                p
                for p in policies
                if selects(p["spec"].get("podSelector"), pod.labels)
                and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes") or [])
                and not p["spec"].get("ingress")
                and not p["spec"].get("egress")
            ]
            if not deny:
                self.fail(
                    "network",
                    pod.owner,
                    "no default-deny NetworkPolicy (policyTypes Ingress+Egress, no rules) selects "
                    "these pods",
                )
            for p in policies:
                if not selects(p["spec"].get("podSelector"), pod.labels):
                    continue
                self._check_ingress_rules(component, p)
                self._check_egress_rules(component, p)

    def _check_ingress_rules(self, component: str, policy: Obj) -> None:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            if not peers:
                self.fail(
                    "network",
                    policy,
                    f"an ingress rule without `from` lets anyone reach the {component} pods",
                )
            for peer in peers:
                if "ipBlock" in peer or not peer.get("namespaceSelector"):
                    self.fail(
                        "network",
                        policy,
                        f"ingress peer {peer} for the {component} pods must be a namespaceSelector "
                        "(the ingress controller's or Prometheus' namespace)",
                    )

    def _check_egress_rules(self, component: str, policy: Obj) -> None:
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to") or []
            if not peers:
                self.fail(
                    "network",
                    policy,
                    f"an egress rule without `to` lets the {component} pods reach anything",
                )
                continue
            open_peer = any(p.get("ipBlock", {}).get("cidr") in OPEN_CIDRS for p in peers)
            if not open_peer:
                continue
            ports = [(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or []]
            if component != "dispatcher":
                self.fail(
                    "network",
                    policy,
                    f"internet egress for the {component} pods: only the dispatcher calls the "
                    "Vonage API",
                )
            elif ports != [("TCP", 443)]:
                self.fail(
                    "network",
                    policy,
                    f"internet egress must be limited to TCP 443 (the Vonage API), got {ports}",
                )

    # -- services and ingress ---------------------------------------------------------------------

    def check_services(self) -> None:
        pods = self.pods()
        for svc in self.of_kind("Service"):
            spec = svc.get("spec", {})
            targets = [
                p for p in pods if selects({"matchLabels": spec.get("selector") or {}}, p.labels)
            ]
            if not spec.get("selector") or not targets:
                self.fail("services", svc, "its selector matches no pods of this render")
                continue
            for port in spec.get("ports") or []:
                tp = port.get("targetPort", port.get("port"))
                if not any(
                    container_port(c, tp) is not None and _declares(c, tp)
                    for p in targets
                    for c in p.containers
                ):
                    self.fail(
                        "services",
                        svc,
                        f"targetPort {tp!r} is not a port of the selected pods' containers",
                    )
        for sm in self.of_kind("ServiceMonitor"):
            sel = sm.get("spec", {}).get("selector")
            svcs = [
                s
                for s in self.of_kind("Service")
                if selects(sel, s.get("metadata", {}).get("labels") or {})
            ]
            if not svcs:
                self.fail("metrics", sm, "its selector matches no Service")
                continue
            names = {p.get("name") for s in svcs for p in s.get("spec", {}).get("ports") or []}
            for ep in sm.get("spec", {}).get("endpoints") or []:
                if "port" in ep and ep["port"] not in names:
                    self.fail(
                        "metrics", sm, f"endpoint port {ep['port']!r} is on no selected Service"
                    )

    def check_ingresses(self) -> None:
        for ing in self.of_kind("Ingress"):
            spec = ing.get("spec", {})
            tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
            for rule in spec.get("rules") or []:
                host = rule.get("host")
                if host not in tls_hosts:
                    self.fail(
                        "ingress-tls",
                        ing,
                        f"host {host!r} has no TLS entry: Vonage would post webhooks (and their "
                        "signed tokens) in clear text",
                    )
                for path in rule.get("http", {}).get("paths") or []:
                    backend = path.get("backend", {}).get("service", {})
                    svc = self.find("Service", backend.get("name", ""))
                    if svc is None:
                        self.fail(
                            "ingress-tls", ing, f"backend Service {backend.get('name')!r} missing"
                        )
                        continue
                    port = backend.get("port", {})
                    svc_ports = svc.get("spec", {}).get("ports") or []
                    if not any(
                        (port.get("name") and p.get("name") == port.get("name"))
                        or (port.get("number") is not None and p.get("port") == port.get("number"))
                        for p in svc_ports
                    ):
                        self.fail("ingress-tls", ing, f"backend port {port} not on {ident(svc)}")


def _declares(container: Obj, port: object) -> bool:
    if isinstance(port, str) and not port.isdigit():
        return any(p.get("name") == port for p in container.get("ports") or [])
    return any(
        int(p.get("containerPort", -1)) == int(str(port)) for p in container.get("ports") or []
    )


def _strings(value: object) -> list[str]:
    out: list[str] = []
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_strings(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_strings(v))
    return out


def check_render(where: str, objects: list[Obj], report: Report, settings: SettingsNames) -> None:
    RenderCheck(where, objects, report, settings).run()
    check_kafka_auth(where, objects, report)
