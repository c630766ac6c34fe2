"""The fakes themselves, where their behaviour is not already pinned down by the service's tests: a runner name in use
is refused with 409, as GitHub does, until that runner is deleted."""
import json
import pathlib
import sys
import time
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


def _jwt(private_pem, app_id, now=None, lifetime=540, algorithm="RS256", pss=False):
    """A GitHub App JWT as the service signs it (RS256), or deliberately wrong (PSS, too long)."""
    import base64
    import time
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time()) if now is None else now
    header = b64(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    claims = b64(json.dumps({"iat": now - 60, "exp": now + lifetime, "iss": app_id}).encode())
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if pss else padding.PKCS1v15()
    signature = key.sign(f"{header}.{claims}".encode(), scheme, hashes.SHA256())
    return f"{header}.{claims}.{b64(signature)}"


def _get(github, path, token, method="GET", body=None):
    request = urllib.request.Request(github.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "User-Agent": "t",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def test_github_fake_acts_as_a_github_app_under_the_ghes_prefix():
    """The App side: the JWT verified with the App's public key (RS256 only, GitHub's claim rules), installation
    look-ups, installation tokens with an expiry that reach their own account only, each with its own rate limit,
    all under `/api/v3`."""
    github = FakeGitHub(prefix="/api/v3")
    try:
        assert github.url.endswith("/api/v3")
        key = github.enable_app(app_id=4242)
        assert key.startswith("-----BEGIN RSA PRIVATE KEY-----")
        octo = github.add_installation("octo-org")
        hubot = github.add_installation("hubot", account_type="User", rate_limit=1)
        jwt = _jwt(key, 4242)

        status, app, _ = _get(github, "/app", jwt)
        assert status == 200 and app["id"] == 4242
        status, installations, _ = _get(github, "/app/installations", jwt)
        assert [i["account"]["login"] for i in installations] == ["octo-org", "hubot"]
        assert installations[0]["permissions"]["administration"] == "write"
        assert _get(github, "/repos/octo-org/api/installation", jwt)[1]["id"] == octo
        assert _get(github, "/orgs/octo-org/installation", jwt)[1]["id"] == octo
        assert _get(github, "/orgs/hubot/installation", jwt)[0] == 404
        assert _get(github, "/users/hubot/installation", jwt)[1]["id"] == hubot

        # Refused JWTs: PSS (not RS256), another App's id, an expiry too far ahead; a token is no JWT.
        for bad in (_jwt(key, 4242, pss=True), _jwt(key, 1), _jwt(key, 4242, lifetime=1200), github.token):
            assert _get(github, "/app", bad)[0] == 401
        assert github.jwt_rejections[:3] == ["A JSON web token could not be decoded", "Integration not found",
                                             "'Expiration time' claim ('exp') is too far in the future"]

        status, issued, _ = _get(github, f"/app/installations/{octo}/access_tokens", jwt, method="POST")
        assert status == 201 and issued["token"].startswith("ghs_") and issued["expires_at"].endswith("Z")
        assert _get(github, "/app/installations/999/access_tokens", jwt, method="POST")[0] == 404
        token = issued["token"]
        status, listed, headers = _get(github, "/orgs/octo-org/actions/runners", token)
        assert status == 200 and headers["x-ratelimit-remaining"] == "4999"
        assert _get(github, "/orgs/other-org/actions/runners", token)[0] == 404  # not its account
        assert _get(github, "/orgs/octo-org/actions/runners", jwt)[0] == 401  # the JWT is not a token

        # Each installation has its own window.
        hubot_token = _get(github, f"/app/installations/{hubot}/access_tokens", jwt, method="POST")[1]["token"]
        assert _get(github, "/repos/hubot/web/actions/runners", hubot_token)[0] == 200
        status, error, headers = _get(github, "/repos/hubot/web/actions/runners", hubot_token)
        assert status == 403 and headers["x-ratelimit-remaining"] == "0" and "rate limit" in error["message"]
        assert _get(github, "/orgs/octo-org/actions/runners", token)[0] == 200

        github.expire_tokens()
        assert _get(github, "/orgs/octo-org/actions/runners", token)[0] == 401
        # Nothing outside the prefix.
        request = urllib.request.Request(github.url[:-len("/api/v3")] + "/app", headers={"Authorization": f"Bearer {jwt}"})
        try:
            urllib.request.urlopen(request)
            raise AssertionError("served outside the prefix")
        except urllib.error.HTTPError as error:
            assert error.code == 404
    finally:
        github.stop()


def test_github_fake_registers_organization_runners_in_their_groups():
    github = FakeGitHub()
    try:
        group = github.add_runner_group("octo-org", "Kubernetes")
        status, groups, _ = _get(github, "/orgs/octo-org/actions/runner-groups?per_page=100", github.token)
        assert status == 200 and [g["name"] for g in groups["runner_groups"]] == ["Default", "Kubernetes"]
        jit = {"name": "runner-1-abcde", "runner_group_id": group, "labels": ["self-hosted"]}
        status, created = _call(github, "POST", "/orgs/octo-org/actions/runners/generate-jitconfig", jit)
        assert status == 201
        assert _call(github, "POST", "/orgs/octo-org/actions/runners/generate-jitconfig",
                     dict(jit, name="runner-2-abcde", runner_group_id=77))[0] == 404  # no such group
        runner_id = created["runner"]["id"]
        assert github.runners[runner_id]["group"] == group and github.runners[runner_id]["repo"] is None
        assert _get(github, "/orgs/octo-org/actions/runners", github.token)[1]["total_count"] == 1
        assert _get(github, "/repos/octo-org/api/actions/runners", github.token)[1]["total_count"] == 0
        assert _get(github, f"/orgs/octo-org/actions/runners/{runner_id}", github.token)[0] == 200
        assert _call(github, "DELETE", f"/orgs/octo-org/actions/runners/{runner_id}")[0] == 204
        assert _get(github, f"/orgs/octo-org/actions/runners/{runner_id}", github.token)[0] == 404
    finally:
        github.stop()


def test_github_fake_enforces_the_secondary_limit_on_points_a_minute():
    """GitHub's secondary limit per credential: a GET costs 1 point, a POST 5; the request over the ceiling is refused
    (403, or 429) with `retry-after` and GitHub's message, and so is every request until `retry-after` has passed.
    A 304 still costs its point (it is a request)."""
    github = FakeGitHub()
    try:
        github.secondary_limit = 12
        github.add_job("octo", "repo", 7)
        status, _, headers = _get(github, "/repos/octo/repo/actions/runs?status=queued", github.token)
        etag = headers["ETag"]
        request = urllib.request.Request(github.url + "/repos/octo/repo/actions/runs?status=queued",
                                         headers={"Authorization": f"Bearer {github.token}", "User-Agent": "t",
                                                  "If-None-Match": etag})
        try:
            urllib.request.urlopen(request)
            raise AssertionError("not conditional")
        except urllib.error.HTTPError as error:
            assert error.code == 304
        jit = {"name": "runner-7-abcde", "runner_group_id": 1, "labels": ["self-hosted"]}
        assert _call(github, "POST", "/repos/octo/repo/actions/runners/generate-jitconfig", jit)[0] == 201
        for _ in range(5):  # 2 + 5 + 5 = 12: at the ceiling, not over it
            assert _get(github, "/repos/octo/repo/actions/runners", github.token)[0] == 200
        status, error, headers = _get(github, "/repos/octo/repo/actions/runners", github.token)
        assert status == 403 and "secondary rate limit" in error["message"] and error["status"] == "403"
        assert 55 <= int(headers["retry-after"]) <= 60
        assert github.secondary_answers == 1 and github.max_points_per_minute() == 12
        github.secondary_status = 429
        assert _get(github, "/repos/octo/repo/actions/runners", github.token)[0] == 429  # still within retry-after
        # Another credential has its own window.
        github.enable_app()
        installation = github.add_installation("octo")
        github.installation_tokens["ghs_other"] = (installation, time.time() + 600)
        assert _get(github, "/repos/octo/repo/actions/runners", "ghs_other")[0] == 200
    finally:
        github.stop()


def test_github_fake_lists_and_redelivers_hook_deliveries_as_github_does():
    """A hook's deliveries: newest first, GitHub's item shape, pages by `cursor` with `Link: rel="next"`; a lost
    delivery is recorded as failed; `POST …/attempts` answers 202 and sends the original delivery again (same GUID,
    signed with the webhook secret) to the receiver, and the list then shows the redelivery. A credential without the
    permission gets 403 or 404; a repository GitHub does not hold, 404."""
    import hashlib
    import hmac
    import http.server
    import threading

    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    github = FakeGitHub()
    try:
        github.webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/webhook"
        github.webhook_secret = "hook-secret"
        repo_id = github.add_repository("octo-org", "api")
        hook = github.add_hook("organization", "octo-org")
        payload = {"action": "queued", "workflow_job": {"id": 1}, "repository": {"id": repo_id, "name": "api"}}
        taken = github.deliver(hook, "workflow_job", payload)
        lost = github.deliver(hook, "workflow_job", dict(payload, workflow_job={"id": 2}), lost=True)
        assert taken["status"] == "OK" and taken["status_code"] == 200 and len(received) == 1
        assert received[0][0]["x-github-hook-id"] == str(hook["id"])
        assert received[0][0]["x-github-hook-installation-target-type"] == "organization"

        base = f"/orgs/octo-org/hooks/{hook['id']}/deliveries"
        status, page, headers = _get(github, base + "?per_page=1", github.token)
        assert status == 200 and [d["guid"] for d in page] == [lost["guid"]]
        assert set(page[0]) == {"id", "guid", "delivered_at", "redelivery", "duration", "status", "status_code",
                                "event", "action", "installation_id", "repository_id", "throttled_at"}
        assert page[0]["status_code"] == 503 and page[0]["repository_id"] == repo_id and not page[0]["redelivery"]
        link = headers["Link"]
        assert link.endswith('>; rel="next"') and "cursor=v1_" in link
        status, older, headers = _get(github, link[1:link.index(">")][len(github.url):], github.token)
        assert [d["guid"] for d in older] == [taken["guid"]] and "Link" not in headers

        status, body, _ = _get(github, f"{base}/{lost['id']}/attempts", github.token, method="POST")
        assert status == 202 and body == {}
        deadline = time.time() + 5
        while len(received) < 2 and time.time() < deadline:
            time.sleep(0.01)
        headers, sent = received[1]
        assert headers["x-github-delivery"] == lost["guid"] and json.loads(sent)["workflow_job"]["id"] == 2
        assert headers["x-hub-signature-256"] == "sha256=" + hmac.new(b"hook-secret", sent, hashlib.sha256).hexdigest()
        deadline = time.time() + 5
        while len(hook["deliveries"]) < 3 and time.time() < deadline:
            time.sleep(0.01)
        newest = _get(github, base, github.token)[1][0]
        assert newest["guid"] == lost["guid"] and newest["redelivery"] and newest["status"] == "OK"

        assert _get(github, f"{base}/999/attempts", github.token, method="POST")[0] == 404
        assert _get(github, "/orgs/octo-org/hooks/1/deliveries", github.token)[0] == 404  # another hook id
        hook["denied"] = 403
        status, error, headers = _get(github, base, github.token)
        assert status == 403 and headers["x-accepted-github-permissions"] == "organization_hooks=read"
        hook["denied"] = 404
        assert _get(github, base, github.token)[0] == 404
        assert _get(github, "/repos/octo-org/other/actions/runners", github.token)[0] == 404
        assert _get(github, "/repos/octo-org/api/actions/runners", github.token)[0] == 200

        # The App's hook, with the App's JWT.
        key = github.enable_app()
        app_hook = github.add_hook("app")
        github.deliver(app_hook, "workflow_job", dict(payload, installation={"id": 5}), lost=True)
        status, page, _ = _get(github, "/app/hook/deliveries", _jwt(key, github.app_id))
        assert status == 200 and page[0]["installation_id"] == 5
    finally:
        github.stop()
        receiver.shutdown()
