"""The image's build context as Docker assembles it (scripts/image-context): Docker's .dockerignore rules, the
COPY lines, and the check that the build stage gets every folder Package.swift declares. The release build in that
context (scripts/check-image-libraries, run by scripts/test) is what proves the image builds; these tests prove
the context it builds in is Docker's, and that the mistake that once broke `docker build .` is caught.
"""
import importlib.machinery
import importlib.util
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "image-context"

loader = importlib.machinery.SourceFileLoader("image_context", str(SCRIPT))
spec = importlib.util.spec_from_loader("image_context", loader)
image_context = importlib.util.module_from_spec(spec)
loader.exec_module(image_context)


def verdicts(patterns, paths):
    rules = image_context.IgnoreRules(image_context.read_ignore_file("\n".join(patterns)))
    return {path: ("excluded" if rules.excluded(path) else "included") for path in paths}


# Cases from Docker's documentation of .dockerignore and moby/patternmatcher's behaviour.
@pytest.mark.parametrize("patterns, path, verdict", [
    (["*/temp*"], "somedir/temporary.txt", "excluded"),
    (["*/temp*"], "somedir/temp", "excluded"),
    (["*/temp*"], "temp", "included"),
    (["*/*/temp*"], "somedir/subdir/temporary.txt", "excluded"),
    (["*/*/temp*"], "somedir/temporary.txt", "included"),
    (["temp?"], "tempa", "excluded"),
    (["temp?"], "tempab", "included"),
    (["temp?"], "temp/", "included"),
    (["**/*.go"], "a/b/c.go", "excluded"),
    (["**/*.go"], "c.go", "excluded"),
    (["**/*.go"], "a/b/c.gox", "included"),
    (["**/foo"], "foo", "excluded"),
    (["**/foo"], "a/foo", "excluded"),
    (["**/foo"], "afoo", "included"),
    (["**foo"], "afoo", "excluded"),
    (["foo/**"], "foo/x/y", "excluded"),
    (["foo/**/bar"], "foo/bar", "excluded"),
    (["foo/**/bar"], "foo/x/y/bar", "excluded"),
    # A pattern that matches a parent directory excludes everything under it.
    (["Benchmarks"], "Benchmarks/kar-bench/main.swift", "excluded"),
    (["/Benchmarks"], "Benchmarks/run.py", "excluded"),
    (["Benchmarks/"], "Benchmarks/run.py", "excluded"),
    (["./Benchmarks"], "Benchmarks/run.py", "excluded"),
    (["Benchmarks"], "Sources/Benchmarks/x.swift", "included"),
    # Exceptions: the last matching pattern decides.
    (["Benchmarks", "!Benchmarks/kar-bench"], "Benchmarks/kar-bench/main.swift", "included"),
    (["Benchmarks", "!Benchmarks/kar-bench"], "Benchmarks/run.py", "excluded"),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", "excluded"),
    (["*.md", "!README*.md", "README-secret.md"], "README-x.md", "included"),
    (["*.md", "!README*.md", "README-secret.md"], "CHANGES.md", "excluded"),
    (["!README.md", "*.md"], "README.md", "excluded"),
    # Comments, blank lines and surrounding whitespace are not patterns.
    (["# Sources", "", "  Tests/fakes  "], "Sources/x.swift", "included"),
    (["# Sources", "", "  Tests/fakes  "], "Tests/fakes/fakeapis.py", "excluded"),
    (["[a-c].txt"], "b.txt", "excluded"),
    (["[a-c].txt"], "d.txt", "included"),
    (["[^a-c].txt"], "d.txt", "excluded"),
    (["\\*.txt"], "*.txt", "excluded"),
    (["\\*.txt"], "a.txt", "included"),
])
def test_dockerignore_rules_are_dockers(patterns, path, verdict):
    assert verdicts(patterns, [path]) == {path: verdict}


def test_dockerfile_instructions_join_continuations_and_track_the_workdir():
    dockerfile = (
        "ARG X=1\n"
        "FROM swift:6 AS build\n"
        "WORKDIR /src\n"
        "# a comment\n"
        "COPY Package.swift ./\n"
        "COPY --chmod=644 Sources \\\n"
        "     ./Sources\n"
        "RUN swift build -c release \\\n"
        "    --product x\n"
        "FROM debian\n"
        "COPY --from=build /out/x /usr/local/bin/x\n"
        "COPY a.txt b.txt /tmp/\n"
    )
    build, runtime = image_context.stages(dockerfile)
    assert build.name == "build" and runtime.name == "1"
    assert build.copies == [(["Package.swift"], "./", "/src"), (["Sources"], "./Sources", "/src")]
    assert " ".join(image_context.build_command(build).split()) == "swift build -c release --product x"
    assert runtime.copies == [(["a.txt", "b.txt"], "/tmp/", "/")]  # --from copies are not from the context


def test_copy_places_files_and_directory_contents_as_docker_does():
    files = ["Package.swift", "Sources/A/a.swift", "Sources/B/b.swift", "README.md", "scripts/x.txt"]
    stage = image_context.Stage("build")
    stage.copies = [(["Package.swift"], "./", "/src"), (["Sources"], "./Sources", "/src"),
                    (["scripts/x.txt"], "/etc/x.conf", "/src"), (["*.md"], "docs/", "/src")]
    placed, missing = image_context.layout(stage, files)
    assert missing == []
    assert placed == {
        "/src/Package.swift": "Package.swift",
        "/src/Sources/A/a.swift": "Sources/A/a.swift",
        "/src/Sources/B/b.swift": "Sources/B/b.swift",
        "/etc/x.conf": "scripts/x.txt",
        "/src/docs/README.md": "README.md",
    }
    stage.copies = [(["Benchmarks/kar-bench"], "./Benchmarks/kar-bench", "/src")]
    assert image_context.layout(stage, files) == ({}, ["Benchmarks/kar-bench"])


def test_the_repositorys_build_stage_gets_what_package_swift_declares(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "context")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("swift build -c release --static-swift-stdlib")
    context = tmp_path / "context"
    assert (context / "Package.swift").is_file()
    assert (context / "Benchmarks" / "kar-bench" / "main.swift").is_file()
    assert (context / "Sources" / "kube-actions-runner").is_dir()
    # What .dockerignore leaves out never reaches the build.
    assert not (context / "Tests" / "conformance").exists()
    assert not (context / "Tests" / "fakes").exists()
    assert not (context / "Benchmarks" / "run.py").exists()


def repository_copy(tmp_path):
    """The files the context script reads, in a scratch repository whose Dockerfile or .dockerignore a test edits."""
    copy = tmp_path / "repo"
    for name in ("Package.swift", "Dockerfile", ".dockerignore"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    for folder in ("Sources", "Tests/KubeActionsRunnerTests", "Tests/TestSupport", "Benchmarks/kar-bench", "scripts"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns(".build*"))
    return copy


def run_in(copy, out):
    return subprocess.run([sys.executable, str(copy / "scripts" / "image-context"), str(out)], capture_output=True,
                          text=True, timeout=120)


def test_the_old_mistake_is_caught_benchmarks_left_out_of_the_context(tmp_path):
    copy = repository_copy(tmp_path)
    assert run_in(copy, tmp_path / "ok").returncode == 0
    ignore = copy / ".dockerignore"
    ignore.write_text(ignore.read_text().replace("!Benchmarks/kar-bench\n", ""))
    out = run_in(copy, tmp_path / "bad")
    assert out.returncode == 1
    assert "COPY Benchmarks/kar-bench: not in the build context" in out.stderr


def test_the_old_mistake_is_caught_declared_target_not_copied(tmp_path):
    copy = repository_copy(tmp_path)
    # Into the folder of an earlier good run, as CI's incremental builds do: what that run left must not hide it.
    assert run_in(copy, tmp_path / "context").returncode == 0
    dockerfile = copy / "Dockerfile"
    text = dockerfile.read_text()
    assert "COPY Benchmarks/kar-bench ./Benchmarks/kar-bench\n" in text
    dockerfile.write_text(text.replace("COPY Benchmarks/kar-bench ./Benchmarks/kar-bench\n", ""))
    out = run_in(copy, tmp_path / "context")
    assert not (tmp_path / "context" / "Benchmarks").exists()
    assert out.returncode == 1
    assert "Package.swift declares target kar-bench at Benchmarks/kar-bench" in out.stderr


def test_release_workflow_kustomization_and_readme_name_one_image_and_the_binarys_version():
    import re
    import yaml
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    steps = [step for job in release["jobs"].values() for step in job.get("steps", [])]
    check = next(step["run"] for step in steps if step.get("name") == "The tag is the version the binary reports")
    # The workflow's own extraction, run here: it must find the version the binary prints.
    extraction = next(line.strip() for line in check.splitlines() if "sed -n" in line)
    command = extraction[extraction.index("$(") + 2:extraction.rindex(")")]
    version = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"release.yml cannot read the version: {command}"
    kustomization = yaml.safe_load((ROOT / "kubernetes" / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image["newName"] == "ghcr.io/kube-actions-runner/kube-actions-runner"
    assert image["newTag"] == version
    readme = (ROOT / "README.md").read_text()
    assert f"{image['newName']}:{version}" in readme
    build = release["jobs"]["build"]
    platforms = sorted(entry["platform"] for entry in build["strategy"]["matrix"]["include"])
    assert platforms == ["linux/amd64", "linux/arm64"]
    push = next(step for step in build["steps"] if step.get("uses", "").startswith("docker/build-push-action"))
    assert push["with"]["sbom"] is True and push["with"]["provenance"] == "mode=max"
    assert release[True]["push"]["tags"] == ["v*.*.*"]  # PyYAML reads the key `on` as true (YAML 1.1)
    assert release["jobs"]["build"]["needs"] == "test"


def test_test_workflow_runs_the_readmes_test_command():
    import yaml
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "scripts/test --install" in runs
    assert "scripts/test --install" in (ROOT / "README.md").read_text()
    assert "scripts/test --install" in (ROOT / ".ci" / "run").read_text()
