"""`render` and `check-config` as a user runs them: the real binary, offline, configured by the environment.

`render`'s stream is what `kubectl apply --dry-run=server -f -` reads: every document parses as YAML (PyYAML),
passes the Kubernetes OpenAPI schema (`kubernetes-validate --strict`, 1.33 and 1.35) and is the same object as the
JSON output's; the JIT config never appears. `check-config` exits 0 with a summary, or 2 with every problem.
"""
import json
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

from conftest import binary

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAYLOAD = ROOT / "Tests/KubeActionsRunnerTests/Fixtures/github/workflow_job.queued.payload.json"
VERSIONS = ["1.33.0", "1.35.0"]


def run(args, env=None, stdin=None):
    """The binary with only the given environment (no HOME, no KUBECONFIG: nothing of this machine's)."""
    full = {"PATH": os.environ.get("PATH", "")}
    full.update(env or {})
    return subprocess.run([binary(), *args], env=full, input=stdin, capture_output=True, text=True, timeout=30)


def documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def validate(tmp_path, docs, version):
    validator = shutil.which("kubernetes-validate")
    if validator is None:
        if os.environ.get("CI"):
            pytest.fail("kubernetes-validate is missing in CI (scripts/test --install installs it)")
        pytest.skip("kubernetes-validate not installed")
    path = tmp_path / "render.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    out = subprocess.run([validator, "--strict", "-k", version, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(docs)


MODES = ["standard", "userns", "dind", "dind-rootless", "kubernetes"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", MODES)
def test_render_of_a_payload_is_a_valid_job_then_secret(tmp_path, mode, version):
    env = {"LABEL_MATCHERS": "ubuntu-latest", "RUNNER_MODE": mode, "NAMESPACE": "github-runners-jobs",
           "HTTPS_PROXY": "http://user:proxy-password@proxy.internal:3128", "RUNNER_CA_CONFIGMAP": "ghes-ca"}
    out = run(["render", "--payload", str(PAYLOAD)], env)
    assert out.returncode == 0, out.stderr
    docs = documents(out.stdout)
    assert [d["kind"] for d in docs] == ["Job", "Secret"]
    job, secret = docs
    assert job["metadata"]["name"] == secret["metadata"]["name"] == "runner-289782451"
    assert job["metadata"]["namespace"] == "github-runners-jobs"
    assert job["spec"]["template"]["metadata"]["labels"]["kube-actions-runner/mode"] == mode
    # Applyable on its own: no owner whose uid does not exist yet.
    assert "ownerReferences" not in secret["metadata"]
    assert secret["stringData"]["jitconfig"] == "<redacted: the JIT config GitHub issues>"
    assert "proxy-password" not in out.stdout
    validate(tmp_path, docs, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_render_of_a_label_set_is_valid(tmp_path, version):
    out = run(["render", "--labels", "self-hosted,linux", "--owner", "octo-org", "--repo", "api", "--job-id", "42"])
    assert out.returncode == 0, out.stderr
    docs = documents(out.stdout)
    assert [d["kind"] for d in docs] == ["Job", "Secret"]
    assert docs[0]["metadata"]["name"] == "runner-42"
    assert docs[0]["metadata"]["annotations"]["kube-actions-runner/repository"] == "octo-org/api"
    assert docs[0]["metadata"]["labels"]["kube-actions-runner/job-id"] == "42"  # a string, as a label must be
    validate(tmp_path, docs, version)


def test_yaml_and_json_outputs_are_the_same_objects():
    env = {"LABEL_MATCHERS": "ubuntu-latest"}
    as_yaml = run(["render", "--payload", "-"], env, stdin=PAYLOAD.read_text())
    as_json = run(["render", "--payload", str(PAYLOAD), "--output", "json"], env)
    assert as_yaml.returncode == 0 and as_json.returncode == 0, as_yaml.stderr + as_json.stderr
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List"
    assert documents(as_yaml.stdout) == listed["items"]


def test_labels_matching_no_matcher_exit_1_naming_each_matcher():
    out = run(["render", "--labels", "linux,arm64"], {"LABEL_MATCHERS": "linux+x64;gpu"})
    assert out.returncode == 1
    assert out.stdout == ""
    assert "labels_do_not_match" in out.stderr
    assert "matcher 1 'linux+x64' needs all of linux, x64: missing x64" in out.stderr
    assert "matcher 2 'gpu' needs gpu: missing" in out.stderr


def test_render_with_an_invalid_configuration_or_command_line_exits_2():
    out = run(["render", "--labels", "self-hosted"], {"RUNNER_MODE": "vm"})
    assert out.returncode == 2
    assert "RUNNER_MODE" in out.stderr
    assert run(["render"]).returncode == 2
    assert run(["render", "--labels", "a", "--payload", str(PAYLOAD)]).returncode == 2


def test_check_config_accepts_a_valid_configuration():
    out = run(["check-config"], {"WEBHOOK_SECRET": "webhook-secret-value", "DRY_RUN": "true",
                                 "GITHUB_TOKEN": "github-token-value", "RUNNER_MODE": "dind"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "configuration OK"
    assert "  mode: dind" in lines
    assert "  GitHub access: one token (GITHUB_TOKEN)" in lines
    assert "secret-value" not in out.stdout and "token-value" not in out.stdout


def test_check_config_reports_every_problem_and_exits_2():
    out = run(["check-config"], {"RUNNER_MODE": "vm", "PORT": "0", "GITHUB_APP_ID": "1",
                                 "GITHUB_APP_PRIVATE_KEY": "private-key-value"})
    assert out.returncode == 2
    assert out.stdout == ""
    for key in ("WEBHOOK_SECRET", "RUNNER_MODE", "PORT", "GITHUB_APP_PRIVATE_KEY", "Kubernetes"):
        assert f"\n{key}" in out.stderr, out.stderr
    assert "private-key-value" not in out.stderr


PROFILES = ROOT / "Tests/KubeActionsRunnerTests/Fixtures/profiles/profiles.yaml"
PROFILE_LABELS = {"arm64": "self-hosted,linux,arm64", "docker": "self-hosted,docker", "gpu": "self-hosted,gpu",
                  "default": "self-hosted,linux"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("profile", sorted(PROFILE_LABELS))
def test_each_profile_renders_a_valid_job(tmp_path, profile, version):
    """Every customization of the example file (scheduling, resources, volumes, env, a pod template patch) is a
    Job the Kubernetes schema accepts."""
    env = {"PROFILES_FILE": str(PROFILES), "NAMESPACE": "github-runners-jobs"}
    out = run(["render", "--labels", PROFILE_LABELS[profile], "--owner", "octo-org", "--repo", "api"], env)
    assert out.returncode == 0, out.stderr
    assert f"# Profile {profile} (PROFILES_FILE" in out.stdout
    docs = documents(out.stdout)
    job = docs[0]
    assert job["spec"]["template"]["metadata"]["labels"]["kube-actions-runner/profile"] == profile
    assert job["metadata"]["labels"]["kube-actions-runner/profile"] == profile
    validate(tmp_path, docs, version)


def test_check_config_lists_every_problem_of_a_profiles_file_with_its_path(tmp_path):
    bad = tmp_path / "profiles.yaml"
    bad.write_text("profiles:\n  - name: a\n    match: self-hosted\n    tolerations:\n      - key: x\n"
                   "        effect: Never\n    volumeMounts:\n      - name: cache\n        mountPath: /cache\n"
                   "    colour: blue\n")
    out = run(["check-config"], {"WEBHOOK_SECRET": "webhook-secret-value", "DRY_RUN": "true",
                                 "PROFILES_FILE": str(bad)})
    assert out.returncode == 2
    problems = [line for line in out.stderr.splitlines() if line.startswith("PROFILES_FILE:")]
    assert [p.split(": ", 2)[2] for p in problems] == [
        "profiles[0].colour: unknown key; known: name, match, labels, mode, runnerImage, dindImage, resources,"
        " nodeSelector, tolerations, affinity, topologySpreadConstraints, podAnnotations, podLabels, env, volumes,"
        " volumeMounts, serviceAccountName, imagePullSecrets, runtimeClassName, priorityClassName,"
        " activeDeadlineSeconds, maxRunners, podTemplatePatch, backend, warmPool (line 10)",
        "profiles[0].tolerations[0].effect: must be one of NoSchedule, PreferNoSchedule, NoExecute (line 6)",
        "profiles[0].volumeMounts[0].name: 'cache' is not one of the profile's volumes (line 8)",
    ], out.stderr
    good = run(["check-config"], {"WEBHOOK_SECRET": "webhook-secret-value", "DRY_RUN": "true",
                                  "PROFILES_FILE": str(PROFILES)})
    assert good.returncode == 0, good.stderr
    assert "    gpu: match 'self-hosted+gpu', labels [self-hosted, linux, x64, gpu]" in good.stdout


@pytest.mark.parametrize("version", VERSIONS)
def test_render_of_a_custom_backend_prints_its_object_and_a_valid_secret(tmp_path, version):
    """A KubeVirt VM profile: the object as the template says with the service's metadata, and its Secret."""
    profiles = ROOT / "Tests/KubeActionsRunnerTests/Fixtures/profiles/backends.yaml"
    out = run(["render", "--labels", "self-hosted,vm", "--owner", "octo-org", "--repo", "api", "--job-id", "7"],
              {"PROFILES_FILE": str(profiles), "NAMESPACE": "github-runners-jobs"})
    assert out.returncode == 0, out.stderr
    vm, secret = documents(out.stdout)
    assert (vm["apiVersion"], vm["kind"]) == ("kubevirt.io/v1", "VirtualMachineInstance")
    assert vm["metadata"]["name"] == secret["metadata"]["name"] == "runner-7"
    assert vm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kube-actions-runner"
    assert vm["spec"]["volumes"][1]["cloudInitNoCloud"]["secretRef"]["name"] == "runner-7"
    assert "<redacted: the JIT config GitHub issues>" in secret["stringData"]["userdata"]
    assert "<redacted" not in yaml.safe_dump(vm)
    # The object's kind is the cluster's own (a CRD): only the Secret has a schema here.
    validate(tmp_path, [secret], version)
