"""The fakes themselves, where their behaviour is not already pinned down by the service's tests: a runner name in use
is refused with 409, as GitHub does, until that runner is deleted."""
import json
import pathlib
import sys
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fakes"))
from fakeapis import FakeGitHub  # noqa: E402


def _call(github, method, path, body=None):
    request = urllib.request.Request(github.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {github.token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_a_runner_name_in_use_is_a_conflict_until_the_runner_is_deleted():
    github = FakeGitHub()
    try:
        jit = {"name": "runner-1-abcde", "runner_group_id": 1, "labels": ["self-hosted"]}
        path = "/repos/octo/repo/actions/runners/generate-jitconfig"
        status, created = _call(github, "POST", path, jit)
        assert status == 201
        status, error = _call(github, "POST", path, jit)
        assert status == 409 and "already exists" in error["message"]
        assert _call(github, "POST", path, dict(jit, name="runner-1-fghij"))[0] == 201

        assert _call(github, "DELETE", f"/repos/octo/repo/actions/runners/{created['runner']['id']}")[0] == 204
        assert _call(github, "POST", path, jit)[0] == 201

        # A test may remove a runner behind the fake's back; its name is free again.
        runner_id = next(i for i, r in github.runners.items() if r["name"] == jit["name"])
        del github.runners[runner_id]
        assert _call(github, "POST", path, jit)[0] == 201
    finally:
        github.stop()


def test_github_fake_pages_lists_with_link_headers():
    """The fake pages runner lists like GitHub: `per_page` items, and `Link: <…&page=N+1>; rel="next"` while more
    remain (the client follows it)."""
    import json
    import urllib.request
    github = FakeGitHub()
    try:
        for index in range(150):
            github.register("octo", "api", "static-%d" % index, ["self-hosted"])
        def get(url):
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {github.token}", "User-Agent": "t"})
            with urllib.request.urlopen(request) as answer:
                return json.loads(answer.read()), answer.headers.get("Link")
        first, link = get(f"{github.url}/repos/octo/api/actions/runners?per_page=100")
        assert len(first["runners"]) == 100 and first["total_count"] == 150
        assert link == f'<{github.url}/repos/octo/api/actions/runners?per_page=100&page=2>; rel="next"'
        second, link = get(link[1:link.index(">")])
        assert len(second["runners"]) == 50 and link is None
        assert {r["id"] for r in first["runners"]}.isdisjoint(r["id"] for r in second["runners"])
    finally:
        github.stop()
