"""The deployment as a user's cluster would see it: kustomize renders it, the Kubernetes OpenAPI schema accepts
every object, Pod Security admits each pod at the level its namespace enforces, RBAC grants exactly the calls the
code makes, promtool accepts the alert rules, hadolint the Dockerfile.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "Tests/KubeActionsRunnerTests/Fixtures/golden"


def need(tool):
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing in CI (scripts/test --install installs it)")
        pytest.skip(f"{tool} not installed")
    return path


@pytest.fixture(scope="module")
def rendered():
    kubectl = need("kubectl")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / "kubernetes")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(objects, kind, name=None):
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert matches, f"no {kind} {name or ''}"
    return matches[0]


@pytest.mark.parametrize("version", ["1.33.0", "1.35.0"])
def test_every_object_passes_the_kubernetes_schema(rendered, tmp_path, version):
    validate = need("kubernetes-validate")
    builtin = [o for o in rendered if not o["apiVersion"].startswith("monitoring.coreos.com/")]
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(builtin))
    out = subprocess.run([validate, "--strict", "-k", version, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(builtin)


# ---- Pod Security Standards, from the policy checks of kubernetes/pod-security-admission (see FACTS.md) ----

BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                         "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "downwardAPI", "emptyDir", "projected", "secret", "csi", "persistentVolumeClaim",
                      "ephemeral", "image"}


def pod_security_violations(pod, level):
    """Violations of `level` (baseline or restricted, policy version 1.35+) by a pod spec."""
    problems = []
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    pod_sc = pod.get("securityContext", {})
    user_ns = pod.get("hostUsers") is False
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(key)
    for volume in pod.get("volumes", []):
        if "hostPath" in volume:
            problems.append("hostPath volume")
    if pod_sc.get("seccompProfile", {}).get("type") == "Unconfined":
        problems.append("seccomp Unconfined")
    for c in containers:
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            problems.append(f"{c['name']}: privileged")
        added = set(sc.get("capabilities", {}).get("add", []))
        if added - BASELINE_CAPABILITIES:
            problems.append(f"{c['name']}: capabilities {sorted(added - BASELINE_CAPABILITIES)}")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            problems.append(f"{c['name']}: hostPort")
    if level == "baseline":
        return problems
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    pod_seccomp = pod_sc.get("seccompProfile", {}).get("type")
    for c in containers:
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{c['name']}: capabilities must drop ALL")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: adds capabilities")
        if sc.get("seccompProfile", {}).get("type", pod_seccomp) not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccompProfile must be RuntimeDefault or Localhost")
        if not user_ns:  # relaxed for hostUsers: false pods from policy 1.35
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                problems.append(f"{c['name']}: runAsNonRoot must be true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{c['name']}: runAsUser 0")
    return problems


def test_the_service_pod_meets_restricted(rendered):
    namespace = find(rendered, "Namespace", "github-runners")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = find(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod_security_violations(pod, "restricted") == []
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("mode,level", [("standard", "restricted"), ("userns", "restricted"), ("dind", "privileged"),
                                        ("dind-rootless", "privileged"), ("kubernetes", "restricted")])
def test_each_runner_mode_needs_exactly_its_documented_level(mode, level):
    """The runner pod's own level. (In kubernetes mode the pods the container hooks create for the job's containers
    run the workflow's images as they are, so that mode's namespace needs baseline: README, "Runner modes".)"""
    pod = json.loads((GOLDEN / f"job.{mode}.json").read_text())["spec"]["template"]["spec"]
    if level == "restricted":
        assert pod_security_violations(pod, "restricted") == []
    else:
        # Only the dockerd sidecar's privilege keeps these pods out of baseline.
        assert pod_security_violations(pod, "baseline") == ["dind: privileged"]


def test_the_runner_namespace_allows_the_default_mode(rendered):
    namespace = find(rendered, "Namespace", "github-runners-jobs")
    deployment = find(rendered, "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NAMESPACE"] == "github-runners-jobs"
    assert env["RUNNER_MODE"] == "dind-rootless"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_rbac_grants_exactly_the_calls_the_code_makes(rendered):
    """Each (verb, resource) the Kubernetes client sends must be granted, and nothing else."""
    source = "\n".join(path.read_text() for path in sorted((ROOT / "Sources/Kubernetes").glob("KubernetesClient*.swift")))
    called = set(re.findall(r'verb:\s*"(\w+)",\s*resource:\s*"([\w.]+)"', source))
    role = find(rendered, "Role")
    assert role["metadata"]["namespace"] == "github-runners-jobs"
    granted = grants(role)
    # kubernetes mode's one extra call (removing the hooks' orphaned pods) is granted apart, with that mode's RBAC.
    hooks_role = find(container_hooks_objects(), "Role", "kube-actions-runner-hook-pods")
    assert hooks_role["metadata"]["namespace"] == "github-runners-jobs"
    assert grants(hooks_role) == {("delete", "pods")} and not grants(hooks_role) & granted
    assert called and granted | grants(hooks_role) == called, f"granted {sorted(granted)}, code calls {sorted(called)}"
    assert not [o for o in rendered if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    binding = find(rendered, "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kube-actions-runner", "namespace": "github-runners"}]


def test_the_deployment_is_wired_as_documented(rendered):
    pod = find(rendered, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "WEBHOOK_SECRET" not in env and "GITHUB_TOKEN" not in env  # secrets only as files
    mount = container["volumeMounts"][0]["mountPath"]
    assert env["WEBHOOK_SECRET_FILE"] == f"{mount}/webhook-secret" and env["GITHUB_TOKEN_FILE"] == f"{mount}/github-token"
    assert pod["volumes"][0]["secret"]["secretName"] == "kube-actions-runner-secrets"
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "metrics": int(env["METRICS_PORT"])}
    # Shutdown: preStop pause plus the server's 20 s drain must fit in the grace period.
    assert pod["terminationGracePeriodSeconds"] > container["lifecycle"]["preStop"]["sleep"]["seconds"] + 20
    assert pod.get("automountServiceAccountToken", True) is True  # the service talks to the API with it
    # The internet-facing Service carries the webhook port only; metrics have a Service of their own.
    service = find(rendered, "Service", "kube-actions-runner")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    metrics = find(rendered, "Service", "kube-actions-runner-metrics")
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    policy = find(rendered, "NetworkPolicy")
    assert policy["spec"]["ingress"][0] == {"ports": [{"port": 8080, "protocol": "TCP"}]}
    assert policy["spec"]["ingress"][1]["ports"] == [{"port": ports["metrics"], "protocol": "TCP"}]
    assert policy["spec"]["ingress"][1]["from"]  # not open to everyone


def test_servicemonitor_uses_only_documented_fields(rendered):
    monitor = find(rendered, "ServiceMonitor")
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] == "metrics" and endpoint["interval"] == "30s" and endpoint["path"] == "/metrics"
    # It selects the metrics Service and only that one.
    services = [o for o in rendered if o["kind"] == "Service"]
    selected = [s for s in services if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == ["kube-actions-runner-metrics"]


def test_alert_rules_pass_promtool(rendered, tmp_path):
    promtool = need("promtool")
    rule = find(rendered, "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"KubeActionsRunnerUpstreamErrors", "KubeActionsRunnerNoDeliveries", "KubeActionsRunnerGitHubRateLimitLow",
            "KubeActionsRunnerJobsFailing"} <= names


def test_dashboard_queries_only_metrics_the_service_exports(rendered):
    dashboard = json.loads(find(rendered, "ConfigMap", "kube-actions-runner-dashboard")["data"]["kube-actions-runner.json"])
    exported = {"webhook_outcomes_total", "webhook_latency_seconds_bucket", "runner_jobs_created_total", "runner_jobs_active",
                "github_api_requests_total", "github_api_rate_limit_remaining", "webhook_requests_total"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            # Metric names: identifiers followed by a selector or range, outside "by (...)" label lists.
            expr = re.sub(r"by \([^)]*\)", "", target["expr"])
            used = set(re.findall(r"\b([a-z_]+)\s*(?=[{\[]|\)|$)", expr)) - {"le"}
            assert used and used <= exported, (panel["title"], used)


def test_dockerfile_passes_hadolint_and_installs_the_checked_package_list():
    hadolint = need("hadolint")
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY scripts/runtime-packages.txt" in dockerfile and "--static-swift-stdlib" in dockerfile
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.M) and "EXPOSE 8080" in dockerfile
    assert "amd64" not in dockerfile.replace("linux/amd64,linux/arm64", "")  # no arch-specific paths


def grants(role):
    return {(verb, f"{resource}.{group}" if group else resource)
            for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def container_hooks_objects():
    return [doc for doc in yaml.safe_load_all((ROOT / "kubernetes/container-hooks.yaml").read_text()) if doc]


@pytest.mark.parametrize("version", ["1.33.0", "1.35.0"])
def test_the_container_hooks_rbac_passes_the_schema_and_binds_what_the_deployment_names(rendered, tmp_path, version):
    validate = need("kubernetes-validate")
    objects = container_hooks_objects()
    path = tmp_path / "hooks.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    out = subprocess.run([validate, "--strict", "-k", version, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # The service account the runner pods name by default, in the namespace they run in, bound to the hooks' Role
    # holding what the hooks check for before a job (actions/runner-container-hooks, packages/k8s).
    pod = json.loads((GOLDEN / "job.kubernetes.json").read_text())["spec"]["template"]["spec"]
    account = find(objects, "ServiceAccount", pod["serviceAccountName"])
    runners = find(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    namespace = {e["name"]: e.get("value") for e in runners}["NAMESPACE"]
    assert account["metadata"]["namespace"] == namespace
    hooks = find(objects, "RoleBinding", "kube-actions-runner-hooks")
    assert hooks["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": namespace}]
    assert grants(find(objects, "Role", "kube-actions-runner-hooks")) == {
        *{(v, "pods") for v in ("get", "list", "create", "delete")}, ("get", "pods/exec"), ("create", "pods/exec"),
        *{(v, "pods/log") for v in ("get", "list", "watch")}, *{(v, "jobs.batch") for v in ("get", "list", "create", "delete")},
        *{(v, "secrets") for v in ("get", "list", "create", "delete")}}
    service = find(objects, "RoleBinding", "kube-actions-runner-hook-pods")
    assert service["subjects"] == find(rendered, "RoleBinding")["subjects"]


def test_kubernetes_mode_pods_give_the_hooks_what_they_read():
    pod = json.loads((GOLDEN / "job.kubernetes.json").read_text())["spec"]["template"]["spec"]
    runner = next(c for c in pod["containers"] if c["name"] == "runner")
    env = {e["name"]: e for e in runner["env"]}
    assert env["ACTIONS_RUNNER_CONTAINER_HOOKS"]["value"] == "/home/runner/k8s/index.js"
    assert env["ACTIONS_RUNNER_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert pod["automountServiceAccountToken"] is True
    # The hooks mount the claim `<runner pod>-work`: the name Kubernetes gives the ephemeral volume `work`'s claim.
    work = next(v for v in pod["volumes"] if v["name"] == "work")
    assert "ephemeral" in work
    assert {"name": "work", "mountPath": "/home/runner/_work"} in runner["volumeMounts"]
    # The template extension the hooks merge: labels with this deployment's marker and the runner Job's name.
    init = next(c for c in pod["initContainers"] if c["name"] == "init-hook-template")
    template = yaml.safe_load({e["name"]: e.get("value") for e in init["env"]}["HOOK_TEMPLATE"])
    labels = template["metadata"]["labels"]
    assert labels["kube-actions-runner/runner-job"] == "runner-289782451"
    assert labels["app.kubernetes.io/managed-by"] == "kube-actions-runner-hooks"
    assert all(isinstance(v, str) for v in labels.values())
    assert env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"]["value"] == {e["name"]: e.get("value") for e in init["env"]}["HOOK_TEMPLATE_PATH"]


def test_the_deployment_mounts_the_optional_profiles_configmap_as_a_directory(rendered):
    pod = find(rendered, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "profiles")
    assert volume["configMap"] == {"name": "kube-actions-runner-profiles", "optional": True}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "profiles")
    # A subPath mount would never see the ConfigMap's updates.
    assert mount == {"name": "profiles", "mountPath": "/etc/kube-actions-runner/profiles", "readOnly": True}
