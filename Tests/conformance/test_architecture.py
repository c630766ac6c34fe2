"""ARCHITECTURE.md's target list is the package's real structure: the same targets, each depending on exactly the
targets it names, and no source file importing a target its own does not depend on (SwiftPM can let such an import
compile when the module happens to be built already, so the compiler alone does not catch it). The layers only
point downward: no cycle, and nothing below App imports App.
"""
import json
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^- \*\*([\w-]+)\*\* \(depends on: ([^)]*)\)", re.M)


def documented_targets(text):
    section = text.split("## Components\n", 1)[1].split("\n## ", 1)[0]
    # An entry may wrap: join each bullet's lines before matching.
    joined = re.sub(r"\n  (?=\S)", " ", section)
    targets = {}
    for name, deps in ENTRY.findall(joined):
        targets[name] = set() if deps.strip() == "nothing" else {d.strip() for d in deps.split(",")}
    return targets


@pytest.fixture(scope="module")
def manifest():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def own_dependencies(manifest):
    names = {t["name"] for t in manifest["targets"]}
    graph = {}
    for target in manifest["targets"]:
        if target["type"] == "test":
            continue
        deps = set()
        for dependency in target["dependencies"]:
            (kind, value), = dependency.items()
            if kind in ("byName", "target") and value[0] in names:
                deps.add(value[0])
        graph[target["name"]] = deps
    return graph


def test_the_documented_targets_are_the_packages(manifest):
    documented = documented_targets((ROOT / "ARCHITECTURE.md").read_text())
    assert len(documented) >= 10, "the Components list was not found in ARCHITECTURE.md"
    assert documented == own_dependencies(manifest)


def test_the_parser_reads_a_wrapped_entry():
    text = ("## Components\n\n- **A** (depends on: nothing): x.\n- **B** (depends on: A, C,\n  D): y.\n"
            "\n## Next\n- **Z** (depends on: A): not in the section.\n")
    assert documented_targets(text) == {"A": set(), "B": {"A", "C", "D"}}


def test_the_layers_have_no_cycle(manifest):
    graph = own_dependencies(manifest)
    state = {}

    def visit(name, path):
        assert state.get(name) != "visiting", "cycle: " + " → ".join(path + [name])
        if state.get(name) == "done":
            return
        state[name] = "visiting"
        for dependency in graph.get(name, ()):
            visit(dependency, path + [name])
        state[name] = "done"

    for name in graph:
        visit(name, [])


def source_folders(manifest):
    for target in manifest["targets"]:
        if target["type"] == "test":
            continue
        folder = ROOT / (target.get("path") or f"Sources/{target['name']}")
        yield target["name"], folder


def test_every_import_of_an_own_target_is_a_declared_dependency(manifest):
    graph = own_dependencies(manifest)
    own = set(graph)
    checked = 0
    for name, folder in source_folders(manifest):
        for source in folder.rglob("*.swift"):
            for imported in re.findall(r"^(?:@testable )?import (\w+)", source.read_text(), re.M):
                if imported in own:
                    checked += 1
                    assert imported in graph[name], f"{source.relative_to(ROOT)} imports {imported}, not a dependency of {name}"
    assert checked >= 50


def test_the_service_binary_links_no_test_support(manifest):
    graph = own_dependencies(manifest)
    reachable, frontier = set(), ["kube-actions-runner"]
    while frontier:
        name = frontier.pop()
        if name not in reachable:
            reachable.add(name)
            frontier.extend(graph.get(name, ()))
    assert "TestSupport" not in reachable
    assert "App" in reachable and "Webhook" in reachable
    below_app = reachable - {"App", "kube-actions-runner"}
    for name in below_app:
        assert "App" not in graph[name], f"{name} depends on App"


def test_test_support_builds_without_a_test_framework():
    """TestSupport is a regular target that the benchmarks build in release (`swift build -c release`), where
    neither Swift Testing nor XCTest can be imported: what records test issues lives in the test target."""
    sources = list((ROOT / "Tests/TestSupport").rglob("*.swift"))
    assert sources
    for source in sources:
        imports = re.findall(r"^(?:@testable )?import (\w+)", source.read_text(), re.M)
        assert not {"Testing", "XCTest"} & set(imports), f"{source.relative_to(ROOT)} imports a test framework"
