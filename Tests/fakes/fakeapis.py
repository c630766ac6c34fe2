"""Loopback fakes of the GitHub REST API and the Kubernetes API that behave like the real ones where the
service can tell: status codes, error bodies (GitHub's {message, documentation_url, status}, Kubernetes'
metav1.Status), rate-limit and request-id headers, bearer-token checks, RBAC denials, AlreadyExists,
owner-reference garbage collection. Both serve HTTPS with a throw-away CA (see make_tls) or plain HTTP.

Faults are injected per endpoint: a queue of canned failures, a fixed latency, or a hang.
Used in-process by the pytest integration tests; `python3 fakeapis.py --help` runs them standalone
(benchmarks, fault campaigns).
"""
import argparse
import asyncio
import base64
import datetime
import email.utils
import gc
import hashlib
import http
import json
import pathlib
import re
import socket
import ssl
import threading
import time
import uuid

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "KubeActionsRunnerTests" / "Fixtures"


class Fault:
    """A canned failure: an HTTP status with a body, a hang (no answer), or a dropped connection."""

    def __init__(self, status=None, body=None, headers=None, hang=None, drop=False):
        self.status, self.body, self.headers, self.hang, self.drop = status, body, headers or {}, hang, drop


class _Headers(dict):
    """Header fields as received (`dict(headers)` keeps their spelling); lookups ignore case."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self._folded = {name.lower(): value for name, value in pairs}

    def get(self, name, default=None):
        return self._folded.get(name.lower(), default)

    def __getitem__(self, name):
        return self._folded[name.lower()]

    def __contains__(self, name):
        return name.lower() in self._folded


class _Loop:
    """One asyncio event loop on a daemon thread, shared by every fake in the process: a connection costs a
    coroutine, not a thread, and waiting out the latency L costs a timer (what lets the benchmark hold hundreds of
    upstream calls in flight without the fakes becoming the bottleneck)."""

    _shared = None
    _guard = threading.Lock()

    @classmethod
    def shared(cls):
        with cls._guard:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


_MAX_HEAD = 64 * 1024


async def _serve_connection(api, reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
                return
            lines = head[:-4].decode("latin-1").split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
                headers = _Headers([(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])])
                length = int(headers.get("Content-Length") or 0)
                body = await reader.readexactly(length) if length else b""
            except (ValueError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                return
            try:
                if not await _answer(api, method, target, headers, body, writer, time.perf_counter()):
                    return
            except (ConnectionError, ssl.SSLError):
                return  # the client left before its answer was written (a test that is done, a cancelled call)
    finally:
        writer.transport.abort()  # also how a dropped connection ends: no answer, no graceful TLS close


_RUNNER = re.compile(rb"runner-(\d+)|/jobs/(\d+)")


async def _answer(api, method, target, headers, body, writer, arrived):
    """Answers one request; False when the connection must end (a dropped connection, an outage).
    `arrived` is when the request was read (CLOCK_MONOTONIC, as the benchmark's own clock)."""
    path, _, query = target.partition("?")
    if path.startswith("/__control/"):  # for benchmarks and fault campaigns run out of process
        status, payload = api.control(method, path, query)
        _write(writer, status, {"Content-Type": "application/json"}, json.dumps(payload).encode())
        await writer.drain()
        return True
    if time.time() < api.down_until:  # an outage: connections are dropped without an answer
        return False
    with api.lock:
        api.requests.append((method, path, dict(headers), body))
    if api.latency:
        await asyncio.sleep(api.latency)
    fault = api.take_fault(method, path)
    if fault and fault.hang:
        await asyncio.sleep(fault.hang)
    if fault and fault.drop:
        return False
    if fault and fault.status:
        status, extra, payload = fault.status, dict(fault.headers), fault.body
    else:
        status, extra, payload = api.handle(method, path, query, headers, body)
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode() if payload is not None else b""
    fields = {**api.common_headers(), **extra}
    if data:
        fields["Content-Type"] = "application/json; charset=utf-8"
    _write(writer, status, fields, data)
    match = _RUNNER.search(target.encode() + b" " + body)
    with api.lock:
        api.timeline.append((method, path, int(next(filter(None, match.groups()))) if match else None, arrived,
                             time.perf_counter()))
    await writer.drain()
    return True


def _write(writer, status, fields, data):
    """Head and body in one write: two small writes meet Nagle and delayed ACKs (a 40 ms stall)."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    head = [f"HTTP/1.1 {status} {reason}", "Server: fakeapis", f"Date: {email.utils.formatdate(usegmt=True)}"]
    head += [f"{name}: {value}" for name, value in fields.items()]
    head.append(f"Content-Length: {len(data)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)


class FakeAPI:
    """Common plumbing: an HTTP/1.1 (or HTTPS) server on 127.0.0.1, the request log, and fault injection."""

    def __init__(self, tls=None):
        self.lock = threading.RLock()
        self.requests = []
        self.timeline = []  # (method, path, runner job id or None, read at, answered at) for the benchmark
        self.faults = {}  # (method, path regex) -> [Fault]
        self.latency = 0.0
        self.down_until = 0.0  # epoch seconds; every request before then is dropped
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls["cert"], tls["key"])
        self._loop = _Loop.shared()

        async def start():
            return await asyncio.start_server(lambda r, w: _serve_connection(self, r, w), "127.0.0.1", 0,
                                              ssl=context, backlog=1024, limit=_MAX_HEAD)

        self.server = self._loop.run(start())
        self.port = self.server.sockets[0].getsockname()[1]
        self.scheme = "https" if tls else "http"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self):
        async def close():
            self.server.close()

        self._loop.run(close())

    def inject(self, method, path_pattern, *faults):
        with self.lock:
            self.faults.setdefault((method, path_pattern), []).extend(faults)

    def take_fault(self, method, path):
        with self.lock:
            for (m, pattern), queue in self.faults.items():
                if m == method and re.fullmatch(pattern, path) and queue:
                    return queue.pop(0)
        return None

    def calls(self, method=None, pattern=".*"):
        with self.lock:
            return [r for r in self.requests if (method is None or r[0] == method) and re.fullmatch(pattern, r[1])]

    def common_headers(self):
        return {}

    def control(self, method, path, query):
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path == "/__control/latency" and method == "POST":
            self.latency = float(params["seconds"])
            return 200, {"latency": self.latency}
        if path == "/__control/stats":
            with self.lock:
                counts = {}
                for method_, path_, _, _ in self.requests:
                    key = method_ + " " + re.sub(r"/\d+", "/{n}", re.sub(r"/runner-[\w-]+", "/{name}", path_))
                    counts[key] = counts.get(key, 0) + 1
                return 200, {"requests": len(self.requests), "by_endpoint": counts}
        if path == "/__control/timeline":
            with self.lock:
                return 200, {"calls": self.timeline}
        if path == "/__control/reset" and method == "POST":
            with self.lock:
                self.requests.clear()
                self.timeline.clear()
            return 200, {}
        return 404, {}


def _github_error(status, message, docs="https://docs.github.com/rest"):
    return {"message": message, "documentation_url": docs, "status": str(status)}


def _default_group():
    """Every organization's default runner group."""
    return {"id": 1, "name": "Default", "visibility": "all", "default": True, "allows_public_repositories": True,
            "restricted_to_workflows": False}


def _b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGitHub(FakeAPI):
    """Repository and organization jobs and self-hosted runners, as the REST API (version 2022-11-28) serves them.

    Callers authenticate with the personal access token `token`, or as a GitHub App: `enable_app()` makes a key
    pair; a JWT signed with it (RS256, verified here with the public key, GitHub's claim rules) reaches `GET /app`,
    `GET /app/installations`, the installation look-ups and `POST /app/installations/{id}/access_tokens`, whose
    tokens (with `expires_at`) reach the installation's account only, each installation with its own rate limit.
    With `prefix="/api/v3"` everything is served under that prefix, as GHES does (`url` includes it).
    """

    def __init__(self, token="ghp_test_token", tls=None, rate_limit=5000, prefix=""):
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.jobs = {}  # (owner, repo, job_id) -> job dict
        # runner_id -> {"name", "labels", "owner", "repo", "busy", "jit", "status", "group"}; repo None: an
        # organization's runner
        self.runners = {}
        # name -> runner_id, so a name clash is found without a scan of every runner (the benchmark registers
        # thousands); an entry whose runner is gone (deleted here, or by a test) is stale and ignored.
        self.runner_ids_by_name = {}
        self.next_runner_id = 100
        self.effective_failures = 0  # JIT calls that register the runner and then answer 500
        self.rate_limit = rate_limit
        self.remaining = rate_limit
        self.reset = int(time.time()) + 3600
        self.job_template = json.loads((FIXTURES / "github/api/job.get.200.json").read_text())
        self.jit_template = json.loads((FIXTURES / "github/api/generate-jitconfig.201.json").read_text())
        self.runner_groups = {}  # org -> [{"id", "name", "visibility", "default"}]; every org has Default (id 1)
        # The GitHub App side (enable_app).
        self.app_id = None
        self.app_public_key = None
        self.installations = {}  # id -> {"account", "type", "permissions", "remaining", "suspended"}
        self.installation_tokens = {}  # token -> (installation id, expires at, epoch seconds)
        self.token_lifetime = 3600
        self.jwt_rejections = []  # why each refused JWT was refused
        # Repositories by (owner, name) -> id (`add_repository`); while empty, every repository exists.
        self.repositories = {}
        # GitHub's secondary limit (`secondary_limit` points a minute per credential: a GET 1, a POST, PATCH, PUT or
        # DELETE 5); None: not enforced. Over it: `secondary_status` (403 or 429) with `retry-after`, as GitHub does.
        self.secondary_limit = None
        self.secondary_status = 403
        self.secondary_retry_after = 60
        self.points = {}  # credential -> [(epoch seconds, points)] of the requests GitHub took
        self.secondary_blocked_until = {}  # credential -> epoch seconds
        self.secondary_answers = 0
        # Webhooks and their deliveries (`add_hook`, `deliver`); redeliveries go to `webhook_url`, signed with
        # `webhook_secret`, as GitHub sends them.
        self.hooks = {}  # key (see _hook_key) -> {"id", "kind", "owner", "repo", "denied", "deliveries": [...]}
        # 403 or 404: the token may not read any repository's or organization's hooks (a fine-grained token without
        # the Webhooks permission, a classic one without a hook scope); the App's own hook is read with its JWT.
        self.hooks_denied = None
        self.next_delivery_id = 1
        self.webhook_url = None
        self.webhook_secret = None
        super().__init__(tls)

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}{self.prefix}"

    # MARK: - GitHub App

    def enable_app(self, app_id=4242, key_format="pkcs1"):
        """Makes the App's key pair (at run time: no key is committed) and returns its private key in PEM,
        PKCS#1 (`BEGIN RSA PRIVATE KEY`, as GitHub hands it out) or PKCS#8."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app_id = app_id
        self.app_public_key = key.public_key()
        form = serialization.PrivateFormat.TraditionalOpenSSL if key_format == "pkcs1" else serialization.PrivateFormat.PKCS8
        return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()

    def add_installation(self, account, account_type="Organization", permissions=None, rate_limit=5000,
                         installation_id=None):
        """Installs the App on `account`; by default with what runners need. Returns the installation id."""
        with self.lock:
            installation_id = installation_id or 1000 + len(self.installations)
            self.installations[installation_id] = {
                "account": account, "type": account_type, "remaining": rate_limit, "suspended": False,
                "permissions": permissions if permissions is not None else {
                    "administration": "write", "organization_self_hosted_runners": "write", "actions": "read",
                    "metadata": "read"},
            }
            return installation_id

    def expire_tokens(self):
        """Every installation token issued so far expires now (GitHub then answers 401 Bad credentials)."""
        with self.lock:
            self.installation_tokens = {t: (i, 0) for t, (i, _) in self.installation_tokens.items()}

    def add_runner_group(self, org, name, group_id=None, visibility="selected"):
        with self.lock:
            groups = self.runner_groups.setdefault(org, [_default_group()])
            group_id = group_id or max(g["id"] for g in groups) + 1
            groups.append({"id": group_id, "name": name, "visibility": visibility, "default": False,
                           "allows_public_repositories": False, "restricted_to_workflows": False})
            return group_id

    def _verify_jwt(self, jwt):
        """None when `jwt` is the App's: RS256 (PKCS#1 v1.5, SHA-256) under its key, `iss` its id, `iat` not in
        the future (60 s of drift allowed), `exp` in the future and at most 10 minutes after `iat`; else the
        message GitHub answers with."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        undecodable = "A JSON web token could not be decoded"
        if self.app_public_key is None:
            return undecodable
        try:
            header_b64, claims_b64, signature_b64 = jwt.split(".")
            header, claims = json.loads(_b64url(header_b64)), json.loads(_b64url(claims_b64))
            signature = _b64url(signature_b64)
        except ValueError:
            return undecodable
        if header.get("alg") != "RS256":
            return undecodable
        try:
            self.app_public_key.verify(signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return undecodable
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "'Issued at' claim ('iat') and 'Expiration time' claim ('exp') must be Integers"
        if str(claims.get("iss")) != str(self.app_id):
            return "Integration not found"
        if iat > now + 60:
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        if exp <= now:
            return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
        if exp - iat > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        return None

    def _installation_json(self, installation_id):
        i = self.installations[installation_id]
        return {"id": installation_id, "account": {"login": i["account"], "type": i["type"]},
                "access_tokens_url": f"{self.url}/app/installations/{installation_id}/access_tokens",
                "app_id": self.app_id, "target_type": i["type"], "permissions": i["permissions"],
                "repository_selection": "all", "events": ["workflow_job"],
                "suspended_at": "2026-01-01T00:00:00Z" if i["suspended"] else None, "suspended_by": None}

    def _app_endpoint(self, method, path, query, jwt):
        """GitHub's answers to the App's JWT."""
        problem = self._verify_jwt(jwt)
        if problem:
            with self.lock:
                self.jwt_rejections.append(problem)
            return 401, {}, _github_error(401, problem)
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        limited = self._secondary_limit(("app", None), method)
        if limited:
            return limited
        hooks = self._serve_hooks(method, path, query)
        if hooks is not None:
            return hooks
        if method == "GET" and path == "/app":
            return 200, {}, {"id": self.app_id, "slug": "kube-actions-runner-test", "name": "kube-actions-runner test",
                             "permissions": {"administration": "write", "organization_self_hosted_runners": "write",
                                             "actions": "read", "metadata": "read"}, "events": ["workflow_job"]}
        if method == "GET" and path == "/app/installations":
            with self.lock:
                items = [self._installation_json(i) for i in sorted(self.installations)]
            return 200, self._next_link(path, query, len(items)), self._page(items, params)
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if m and method == "POST":
            with self.lock:
                installation = self.installations.get(int(m[1]))
                if installation is None:
                    return 404, {}, _github_error(404, "Not Found")
                if installation["suspended"]:
                    return 403, {}, _github_error(403, "This installation has been suspended")
                token = "ghs_" + uuid.uuid4().hex[:36]
                expires = int(time.time()) + self.token_lifetime
                self.installation_tokens[token] = (int(m[1]), expires)
            expires_at = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 201, {}, {"token": token, "expires_at": expires_at, "permissions": installation["permissions"],
                             "repository_selection": "all"}
        m = re.fullmatch(r"/(repos|orgs|users)/([^/]+)(?:/([^/]+))?/installation", path)
        if m and method == "GET" and (m[1] == "repos") == (m[3] is not None):
            with self.lock:
                for installation_id, i in sorted(self.installations.items()):
                    if i["account"].lower() == m[2].lower() and (m[1] != "orgs" or i["type"] == "Organization") \
                            and (m[1] != "users" or i["type"] == "User"):
                        return 200, {}, self._installation_json(installation_id)
            return 404, {}, _github_error(404, "Not Found")
        return 404, {}, _github_error(404, "Not Found")

    def _caller(self, headers, path):
        """Who calls: ("pat", None) for the token, ("installation", id) for an unexpired installation token of
        the account the path names, or an error answer."""
        authorization = headers.get("Authorization") or ""
        bearer = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else authorization[len("token "):]
        if bearer == self.token:
            return ("pat", None), None
        with self.lock:
            issued = self.installation_tokens.get(bearer)
            if issued is None or issued[1] <= time.time():
                return None, (401, {}, _github_error(401, "Bad credentials"))
            installation = self.installations[issued[0]]
        m = re.match(r"/(?:repos|orgs)/([^/]+)", path)
        if m and m[1].lower() != installation["account"].lower():
            return None, (404, {}, _github_error(404, "Not Found"))  # outside the installation: not found
        return ("installation", issued[0]), None

    # MARK: - Secondary rate limit

    def _secondary_limit(self, caller, method):
        """GitHub's secondary limit on points a minute per credential: None when the request may go on (its points
        are then counted), else the answer GitHub gives: 403 or 429, `retry-after`, and its message. A credential
        over it is refused until `retry-after` has passed."""
        points = 1 if method in ("GET", "HEAD", "OPTIONS") else 5
        now = time.time()
        with self.lock:
            spent = self.points.setdefault(caller, [])
            if self.secondary_limit is not None:
                recent = sum(p for t, p in spent if t > now - 60)
                if now < self.secondary_blocked_until.get(caller, 0) or recent + points > self.secondary_limit:
                    self.secondary_answers += 1
                    until = self.secondary_blocked_until.setdefault(caller, now + self.secondary_retry_after)
                    if until <= now:
                        until = self.secondary_blocked_until[caller] = now + self.secondary_retry_after
                    message = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                               "again. If you reach out to GitHub Support for help, please include the request ID "
                               f"{uuid.uuid4().hex[:8].upper()}:{uuid.uuid4().hex[:8].upper()}.")
                    docs = ("https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
                            "#about-secondary-rate-limits")
                    return (self.secondary_status, {"retry-after": str(max(1, round(until - now)))},
                            _github_error(self.secondary_status, message, docs))
            spent.append((now, points))
        return None

    def max_points_per_minute(self, since=0.0):
        """The most points one credential spent in any 60 s window (from `since`, epoch seconds): what the secondary
        limit compares with its ceiling."""
        best = 0
        with self.lock:
            for spent in self.points.values():
                times = [(t, p) for t, p in spent if t >= since]
                start, total = 0, 0
                for t, p in times:
                    total += p
                    while times[start][0] <= t - 60:
                        total -= times[start][1]
                        start += 1
                    best = max(best, total)
        return best

    # MARK: - Repositories, webhooks and their deliveries

    def add_repository(self, owner, name):
        """A repository GitHub holds (once any is added, a request about another is answered 404); returns its id."""
        with self.lock:
            return self.repositories.setdefault((owner, name), 500_000 + len(self.repositories))

    @staticmethod
    def _hook_key(kind, owner=None, repo=None):
        return {"repository": ("repository", owner, repo), "organization": ("organization", owner, None),
                "app": ("app", None, None)}[kind]

    def add_hook(self, kind, owner=None, repo=None, hook_id=None):
        """A webhook: `repository` (owner, repo), `organization` (owner) or the App's (`app`). Returns its record:
        set `denied` to 403 or 404 to answer its deliveries' endpoints as GitHub does to a credential without the
        permission."""
        with self.lock:
            hook = {"id": hook_id or 400_000 + len(self.hooks), "kind": kind, "owner": owner, "repo": repo,
                    "denied": None, "deliveries": []}
            self.hooks[self._hook_key(kind, owner, repo)] = hook
            return hook

    def deliver(self, hook, event, payload, lost=False, guid=None):
        """A delivery through `hook`: sent to `webhook_url` (signed with `webhook_secret`) and recorded with the
        answer, or, `lost`, recorded as GitHub records a delivery the receiver did not take (503 from a proxy in
        front of it), without sending. Returns the recorded delivery."""
        guid = guid or str(uuid.uuid4())
        body = json.dumps(payload).encode()
        if lost:
            return self._record(hook, guid, event, payload, body, 503, "Invalid HTTP Response: 503", 10.0, False)
        return self._send(hook, guid, event, payload, body, redelivery=False)

    def _send(self, hook, guid, event, payload, body, redelivery):
        import hmac
        import urllib.error
        import urllib.request

        target_type = {"repository": "repository", "organization": "organization", "app": "integration"}[hook["kind"]]
        headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/fakeapis",
                   "X-GitHub-Event": event, "X-GitHub-Delivery": guid, "X-GitHub-Hook-ID": str(hook["id"]),
                   "X-GitHub-Hook-Installation-Target-Type": target_type,
                   "X-GitHub-Hook-Installation-Target-ID": str(hook["id"] + 1)}
        if self.webhook_secret:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(self.webhook_secret.encode(), body,
                                                                  hashlib.sha256).hexdigest()
        started = time.time()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.webhook_url, data=body, headers=headers),
                                        timeout=10) as answer:
                code, status = answer.status, "OK"
        except urllib.error.HTTPError as error:
            code, status = error.code, f"Invalid HTTP Response: {error.code}"
        except OSError:
            code, status = 0, "failed to connect to host"
        return self._record(hook, guid, event, payload, body, code, status, time.time() - started, redelivery)

    def _record(self, hook, guid, event, payload, body, code, status, duration, redelivery):
        with self.lock:
            delivery = {"id": self.next_delivery_id, "guid": guid,
                        "delivered_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "redelivery": redelivery, "duration": round(duration, 2), "status": status, "status_code": code,
                        "event": event, "action": payload.get("action"),
                        "installation_id": (payload.get("installation") or {}).get("id"),
                        "repository_id": (payload.get("repository") or {}).get("id"), "throttled_at": None,
                        "_body": body}
            self.next_delivery_id += 1
            hook["deliveries"].append(delivery)
            return delivery

    def _serve_hooks(self, method, path, query):
        """`GET …/hooks/{hook_id}/deliveries` (newest first, paged by `cursor`) and `POST
        …/deliveries/{delivery_id}/attempts` (202, then the original delivery is sent again, with its GUID); None for
        other paths."""
        listing = re.fullmatch(r"/(?:repos/([^/]+)/([^/]+)|orgs/([^/]+))/hooks", path)
        if listing and method == "GET":  # the hooks themselves: readable where their deliveries are
            kind = "repository" if listing[1] else "organization"
            with self.lock:
                hook = self.hooks.get(self._hook_key(kind, listing[1] or listing[3], listing[2]))
            denied = (hook and hook["denied"]) or self.hooks_denied
            if denied == 403:
                permission = {"repository": "repository_hooks", "organization": "organization_hooks"}[kind]
                return 403, {"x-accepted-github-permissions": f"{permission}=read"}, _github_error(
                    403, "Resource not accessible by personal access token")
            if denied:
                return 404, {}, _github_error(404, "Not Found")
            items = [{"type": "Repository" if kind == "repository" else "Organization", "id": hook["id"],
                      "name": "web", "active": True, "events": ["workflow_job"],
                      "config": {"content_type": "json", "insecure_ssl": "0", "url": self.webhook_url or ""}}] if hook else []
            return 200, {}, items
        m = (re.fullmatch(r"/repos/([^/]+)/([^/]+)/hooks/(\d+)/deliveries(?:/(\d+)/attempts)?", path)
             or re.fullmatch(r"/orgs/([^/]+)()/hooks/(\d+)/deliveries(?:/(\d+)/attempts)?", path)
             or re.fullmatch(r"/app()()/hook()/deliveries(?:/(\d+)/attempts)?", path))
        if not m:
            return None
        kind = "repository" if path.startswith("/repos/") else "organization" if path.startswith("/orgs/") else "app"
        with self.lock:
            hook = self.hooks.get(self._hook_key(kind, m[1] or None, m[2] or None))
        if hook is None or (kind != "app" and str(hook["id"]) != m[3]):
            return 404, {}, _github_error(404, "Not Found")
        denied = hook["denied"] or (self.hooks_denied if kind != "app" else None)
        if denied == 403:
            permission = {"repository": "repository_hooks", "organization": "organization_hooks"}.get(kind, "")
            return 403, {"x-accepted-github-permissions": f"{permission}=read"}, _github_error(
                403, "Resource not accessible by personal access token")
        if denied:
            return 404, {}, _github_error(404, "Not Found")
        if m[4]:
            if method != "POST":
                return 404, {}, _github_error(404, "Not Found")
            with self.lock:
                original = next((d for d in hook["deliveries"] if d["id"] == int(m[4])), None)
            if original is None:
                return 404, {}, _github_error(404, "Not Found")
            if self.webhook_url:
                args = (hook, original["guid"], original["event"], json.loads(original["_body"]), original["_body"], True)
                threading.Timer(0.05, self._send, args=args).start()
            return 202, {}, {}
        if method != "GET":
            return 404, {}, _github_error(404, "Not Found")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        per_page = min(100, int(params.get("per_page", 30)))
        with self.lock:
            newest_first = [{k: v for k, v in d.items() if k != "_body"} for d in reversed(hook["deliveries"])]
        cursor = params.get("cursor", "")
        if cursor:
            if not re.fullmatch(r"v1_\d+", cursor):
                return 400, {}, _github_error(400, "Invalid cursor")
            newest_first = [d for d in newest_first if d["id"] < int(cursor[3:])]
        page = newest_first[:per_page]
        extra = {}
        if len(newest_first) > per_page:
            params["cursor"] = f"v1_{page[-1]['id']}"
            target = f"{self.url}{path}?" + "&".join(f"{k}={v}" for k, v in params.items())
            extra["Link"] = f'<{target}>; rel="next"'
        return 200, extra, page

    def add_job(self, owner, repo, job_id, status="queued", labels=("self-hosted", "linux"), run_id=None, age=0):
        created = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
        with self.lock:
            job = dict(self.job_template, id=job_id, status=status, conclusion=None, labels=list(labels),
                       runner_id=None, runner_name=None, runner_group_id=None, runner_group_name=None,
                       run_id=run_id or job_id, created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.jobs[(owner, repo, job_id)] = job
            return job

    def common_headers(self):
        with self.lock:
            return {
                "x-ratelimit-limit": str(self.rate_limit),
                "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-reset": str(self.reset),
                "x-ratelimit-used": str(self.rate_limit - self.remaining),
                "x-ratelimit-resource": "core",
                "x-github-request-id": uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:8].upper(),
                "x-github-api-version-selected": "2022-11-28",
            }

    def handle(self, method, path, query, headers, body):
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return 404, {}, _github_error(404, "Not Found")
            path = path[len(self.prefix):]
        if not headers.get("User-Agent"):
            return 403, {}, _github_error(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.")
        if path.startswith("/app") or path.endswith("/installation"):
            authorization = headers.get("Authorization") or ""
            return self._app_endpoint(method, path, query, authorization[len("Bearer "):])
        caller, refusal = self._caller(headers, path)
        if refusal:
            return refusal
        limited = self._secondary_limit(caller, method)
        if limited:
            return limited
        if self.repositories:
            m = re.match(r"/repos/([^/]+)/([^/]+)", path)
            if m and (m[1], m[2]) not in self.repositories:
                return 404, {}, _github_error(404, "Not Found")
        hooks = self._serve_hooks(method, path, query)
        if hooks is not None:
            return hooks
        if caller[0] == "installation":  # the installation's own window, in its own headers
            with self.lock:
                installation = self.installations[caller[1]]
                remaining = installation["remaining"]
                if remaining > 0:
                    installation["remaining"] -= 1
            limits = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(max(remaining - 1, 0)),
                      "x-ratelimit-reset": str(self.reset), "x-ratelimit-resource": "core"}
            if remaining <= 0:
                return 403, dict(limits, **{"x-ratelimit-remaining": "0"}), _github_error(
                    403, f"API rate limit exceeded for installation ID {caller[1]}.")
            status, extra, payload = self._serve(method, path, query, headers, body, count=False)
            return status, {**limits, **extra}, payload
        return self._serve(method, path, query, headers, body, count=True)

    def _serve(self, method, path, query, headers, body, count):
        """The REST answers themselves; `count`: against the token's rate limit."""
        listing = self._listing(method, path, query)
        if listing is not None:  # conditional requests: a 304 does not count against the rate limit
            etag = '"' + hashlib.sha1(json.dumps(listing, sort_keys=True).encode()).hexdigest() + '"'
            if headers.get("If-None-Match") == etag:
                return 304, {"ETag": etag}, None
        if count:
            with self.lock:
                if self.remaining <= 0:
                    return 403, {}, _github_error(403, "API rate limit exceeded for user ID 1.")
                self.remaining -= 1
        if listing is not None:
            return 200, {"ETag": etag, **self._next_link(path, query, listing["total_count"])}, listing
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/jobs/(\d+)", path)
        if m and method == "GET":
            with self.lock:
                job = self.jobs.get((m[1], m[2], int(m[3])))
            return (200, {}, job) if job else (404, {}, _github_error(404, "Not Found"))
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/runners/generate-jitconfig", path)
        if m and method == "POST":
            return self._generate(m[1], m[2], body)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/runners/(\d+)", path)
        if m and method == "GET":
            with self.lock:
                runner = self.runners.get(int(m[3]))
                if not runner or (runner["owner"], runner["repo"]) != (m[1], m[2]):
                    return 404, {}, _github_error(404, "Not Found")
                return 200, {}, self._runner(int(m[3]), runner)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/runners/(\d+)", path)
        if m and method == "DELETE":
            with self.lock:
                runner = self.runners.get(int(m[3]))
                if not runner or (runner["owner"], runner["repo"]) != (m[1], m[2]):
                    return 404, {}, _github_error(404, "Not Found")
                if runner["busy"]:
                    return 422, {}, _github_error(422, f'Bad request - Runner "{runner["name"]}" is still running a job"')
                del self.runners[int(m[3])]
                self.runner_ids_by_name.pop(runner["name"], None)
            return 204, {}, None
        return self._serve_organization(method, path, query, body)

    def _serve_organization(self, method, path, query, body):
        """Organization runners and runner groups."""
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        m = re.fullmatch(r"/orgs/([^/]+)/actions/runners/generate-jitconfig", path)
        if m and method == "POST":
            return self._generate(m[1], None, body)
        m = re.fullmatch(r"/orgs/([^/]+)/actions/runners/(\d+)", path)
        if m and method in ("GET", "DELETE"):
            with self.lock:
                runner = self.runners.get(int(m[2]))
                if not runner or runner["owner"] != m[1] or runner["repo"] is not None:
                    return 404, {}, _github_error(404, "Not Found")
                if method == "GET":
                    return 200, {}, self._runner(int(m[2]), runner)
                if runner["busy"]:
                    return 422, {}, _github_error(422, f'Bad request - Runner "{runner["name"]}" is still running a job"')
                del self.runners[int(m[2])]
                self.runner_ids_by_name.pop(runner["name"], None)
            return 204, {}, None
        m = re.fullmatch(r"/orgs/([^/]+)/actions/runner-groups", path)
        if m and method == "GET":
            with self.lock:
                groups = list(self.runner_groups.get(m[1], [_default_group()]))
            return (200, self._next_link(path, query, len(groups)),
                    {"total_count": len(groups), "runner_groups": self._page(groups, params)})
        return 404, {}, _github_error(404, "Not Found")

    def register(self, owner, repo, name, labels, busy=False):
        """A registration this service did not make (by hand, or another deployment's); returns its id."""
        with self.lock:
            runner_id = self.next_runner_id
            self.next_runner_id += 1
            self.runners[runner_id] = {"name": name, "labels": list(labels), "owner": owner, "repo": repo,
                                       "busy": busy, "jit": "", "status": "online" if busy else "offline"}
            self.runner_ids_by_name[name] = runner_id
            return runner_id

    @staticmethod
    def _runner(runner_id, r):
        # GitHub adds its default read-only labels to a JIT runner; the custom ones follow.
        return {"id": runner_id, "name": r["name"], "os": "linux", "status": r.get("status", "offline"), "busy": r["busy"],
                "ephemeral": True, "labels": [{"id": n, "name": l, "type": "custom"} for n, l in enumerate(r["labels"])]}

    def _listing(self, method, path, query):
        """The body of GET .../actions/runs?status=, .../runs/{id}/jobs or .../actions/runners (a repository's or an
        organization's), or None for other requests."""
        if method != "GET":
            return None
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/runs", path)
        if m:
            with self.lock:
                by_run = {}
                for (owner, repo, _), job in self.jobs.items():
                    if (owner, repo) == (m[1], m[2]):
                        by_run.setdefault(job["run_id"], []).append(job["status"])
                runs = {}
                for run, statuses in by_run.items():  # a run is as far along as its furthest job
                    if all(st == "completed" for st in statuses):
                        runs[run] = "completed"
                    elif any(st in ("in_progress", "completed") for st in statuses):
                        runs[run] = "in_progress"
                    else:
                        runs[run] = "queued"
                wanted = sorted((run for run, status in runs.items() if status == params.get("status", status)), reverse=True)
            page = self._page(wanted, params)  # newest first, like the real API
            return {"total_count": len(wanted), "workflow_runs": [{"id": run, "status": runs[run]} for run in page]}
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/jobs", path)
        if m:
            with self.lock:
                jobs = [j for (o, r, _), j in sorted(self.jobs.items()) if (o, r) == (m[1], m[2]) and j["run_id"] == int(m[3])]
            return {"total_count": len(jobs), "jobs": self._page(jobs, params)}
        m = re.fullmatch(r"/(?:repos/([^/]+)/([^/]+)|orgs/([^/]+))/actions/runners", path)
        if m:
            with self.lock:
                runners = [self._runner(i, r) for i, r in sorted(self.runners.items())
                           if (r["owner"], r["repo"]) == ((m[1], m[2]) if m[1] else (m[3], None))]
            return {"total_count": len(runners), "runners": self._page(runners, params)}
        return None

    def _next_link(self, path, query, total):
        """GitHub's `Link` header: `rel="next"` while pages remain (the same query with the next `page`)."""
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        per_page = min(100, int(params.get("per_page", 30)))
        page = max(1, int(params.get("page", 1)))
        if page * per_page >= total:
            return {}
        params["page"] = str(page + 1)
        target = f"{self.url}{path}?" + "&".join(f"{k}={v}" for k, v in params.items())
        return {"Link": f'<{target}>; rel="next"'}

    @staticmethod
    def _page(items, params):
        per_page = min(100, int(params.get("per_page", 30)))
        page = max(1, int(params.get("page", 1)))
        return items[(page - 1) * per_page: page * per_page]

    def _generate(self, owner, repo, body):
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {}, _github_error(400, "Problems parsing JSON")
        for key in ("name", "runner_group_id", "labels"):
            if key not in request:
                return 422, {}, _github_error(422, f"Invalid request.\n\n\"{key}\" wasn't supplied.")
        labels = request["labels"]
        if not isinstance(labels, list) or not 1 <= len(labels) <= 100:
            return 422, {}, _github_error(422, "Invalid request.\n\nFor 'properties/labels', minimum 1 items.")
        # A repository's runners join the default group; an organization's, one of its groups.
        with self.lock:
            groups = {g["id"] for g in self.runner_groups.get(owner, [_default_group()])} if repo is None else {1}
        if request["runner_group_id"] not in groups:
            return 404, {}, _github_error(404, "Not Found")
        with self.lock:
            clash = self.runners.get(self.runner_ids_by_name.get(request["name"]))
            if clash and clash["name"] == request["name"]:
                return 409, {}, _github_error(409, "Already exists - A runner with the name *** already exists.")
            runner_id = self.next_runner_id
            self.next_runner_id += 1
            jit = base64.b64encode(json.dumps({".runner": base64.b64encode(json.dumps(
                {"agentId": runner_id, "agentName": request["name"]}).encode()).decode()}).encode()).decode()
            self.runner_ids_by_name[request["name"]] = runner_id
            self.runners[runner_id] = {"name": request["name"], "labels": labels, "owner": owner, "repo": repo,
                                       "busy": False, "jit": jit, "status": "offline",
                                       "group": request["runner_group_id"]}
            effective_failure = self.effective_failures > 0
            if effective_failure:
                self.effective_failures -= 1
        if effective_failure:  # registered, then answered as a failure (a timeout or a 5xx after the write)
            return 500, {}, _github_error(500, "Server Error")
        runner = dict(self.jit_template["runner"], id=runner_id, name=request["name"],
                      labels=[{"id": i, "name": n, "type": "custom"} for i, n in enumerate(labels)])
        return 201, {}, {"runner": runner, "encoded_jit_config": jit}


def _status(code, reason, message, details=None):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


def _now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selected(selector, labels):
    """Equality- and set-based label selector terms (`a=b`, `a==b`, `a!=b`, `a`, `!a`), as the API server reads them."""
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj, dotted):
    if dotted == "status.successful":  # the API server's one Job status field selector reads status.succeeded
        return (obj.get("status") or {}).get("succeeded", 0)
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


class FakeKubernetes(FakeAPI):
    """Jobs and Secrets in namespaces, with bearer tokens, RBAC, AlreadyExists, delete preconditions, label and field
    selectors and owner-reference GC; and a Job controller that creates each Job's pod (labels from its template,
    `batch.kubernetes.io/job-name`, owned by the Job) unless a pod quota (`pod_quota`, a ResourceQuota on `pods`) is
    used up, in which case it records a FailedCreate event on the Job (`involvedObject.uid`) and retries, as the real
    controller does, until the quota frees. `on_pod_started(pod)` is told of each pod it creates."""

    RESOURCES = {"jobs": ("batch", "Job"), "secrets": ("", "Secret"), "configmaps": ("", "ConfigMap"),
                 "leases": ("coordination.k8s.io", "Lease"), "pods": ("", "Pod"), "events": ("", "Event")}

    def __init__(self, token="kube-test-token", tls=None, user="system:serviceaccount:github-runners:kube-actions-runner",
                 job_controller=True):
        self.token = token
        self.user = user
        self.objects = {}  # (resource, namespace, name) -> object; never changed in place, a write replaces it
        self.encoded = {}  # the same key -> the object as JSON, encoded once, so a list costs a join
        self.encoded_metadata = {}  # the same key -> its PartialObjectMetadata as JSON
        self.denied = set()  # (verb, resource)
        self.pod_quota = None  # pods allowed per namespace; None: no ResourceQuota
        self.on_pod_started = None
        super().__init__(tls)
        if job_controller:
            threading.Thread(target=self._job_controller, daemon=True).start()

    def _job_controller(self, period=0.2):
        stop = threading.Event()
        while not stop.wait(period):
            self.reconcile_jobs()

    def reconcile_jobs(self):
        """One pass of the Job controller: a pod for each live Job that has none, or a FailedCreate event."""
        started = []
        with self.lock:
            pods = [o for (r, _, _), o in self.objects.items() if r == "pods"]
            owners = {ref.get("uid") for p in pods for ref in p["metadata"].get("ownerReferences", [])}
            for (resource, namespace, name), job in list(self.objects.items()):
                if resource != "jobs" or job["metadata"]["uid"] in owners or job.get("status", {}).get("conditions"):
                    continue
                pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
                in_namespace = sum(1 for (r, ns, _) in self.objects if r == "pods" and ns == namespace)
                if self.pod_quota is not None and in_namespace >= self.pod_quota:
                    self._failed_create(namespace, job, pod_name, in_namespace)
                    continue
                template = job.get("spec", {}).get("template", {})
                labels = dict(template.get("metadata", {}).get("labels", {}))
                labels.update({"batch.kubernetes.io/job-name": name, "job-name": name,
                               "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]})
                now = _now_rfc3339()
                self.version = getattr(self, "version", 1000) + 1
                containers = template.get("spec", {}).get("containers", [])
                pod = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": pod_name, "namespace": namespace, "uid": str(uuid.uuid4()), "labels": labels,
                                    "resourceVersion": str(self.version), "creationTimestamp": now,
                                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                         "uid": job["metadata"]["uid"], "controller": True}]},
                       "spec": template.get("spec", {}),
                       "status": {"phase": "Running", "startTime": now,
                                  "conditions": [{"type": "PodScheduled", "status": "True"}],
                                  "containerStatuses": [{"name": c.get("name", "runner"), "ready": True, "started": True,
                                                         "state": {"running": {"startedAt": now}}} for c in containers]}}
                self._store(("pods", namespace, pod_name), pod)
                started.append(pod)
        for pod in started:
            if self.on_pod_started:
                self.on_pod_started(pod)

    def _failed_create(self, namespace, job, pod_name, used):
        """The event the Job controller records when the quota admission plugin refuses its pod (count bumped on repeats)."""
        now = _now_rfc3339()
        name = f'{job["metadata"]["name"]}.{job["metadata"]["uid"][:8]}'
        key = ("events", namespace, name)
        event = self.objects.get(key)
        message = (f'pods "{pod_name}" is forbidden: exceeded quota: runner-pods, requested: pods=1, used: pods={used}, '
                   f'limited: pods={self.pod_quota}')
        self.version = getattr(self, "version", 1000) + 1
        if event is None:
            event = {"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "FailedCreate", "count": 0,
                     "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
                     "involvedObject": {"kind": "Job", "namespace": namespace, "name": job["metadata"]["name"],
                                        "uid": job["metadata"]["uid"], "apiVersion": "batch/v1"},
                     "source": {"component": "job-controller"}, "firstTimestamp": now}
        event = dict(event, message=message, lastTimestamp=now, count=event["count"] + 1)
        event["metadata"] = dict(event["metadata"], resourceVersion=str(self.version))
        self._store(key, event)

    def finish_job(self, namespace, name, succeeded=True):
        """The runner exited: its pod ends and the Job gets its Complete (or Failed) condition."""
        with self.lock:
            job = self.objects.get(("jobs", namespace, name))
            if job is None:
                return
            now = _now_rfc3339()
            condition = "Complete" if succeeded else "Failed"
            job = dict(job, status={"conditions": [{"type": condition, "status": "True", "lastTransitionTime": now}]})
            self._store(("jobs", namespace, name), job)
            for key, pod in list(self.objects.items()):
                if key[0] == "pods" and pod["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name:
                    statuses = [dict(c, ready=False, state={"terminated": {"exitCode": 0, "finishedAt": now}})
                                for c in pod["status"].get("containerStatuses", [])]
                    self._store(key, dict(pod, status=dict(pod["status"], phase="Succeeded", containerStatuses=statuses)))

    def jobs(self, namespace):
        with self.lock:
            return {n: o for (r, ns, n), o in self.objects.items() if r == "jobs" and ns == namespace}

    def secrets(self, namespace):
        with self.lock:
            return {n: o for (r, ns, n), o in self.objects.items() if r == "secrets" and ns == namespace}

    def handle(self, method, path, query, headers, body):
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, _status(401, "Unauthorized", "Unauthorized")
        m = re.fullmatch(r"/(?:api/v1|apis/batch/v1|apis/coordination\.k8s\.io/v1)/namespaces/([^/]+)/"
                         r"(jobs|secrets|configmaps|leases|pods|events)(?:/([^/]+))?", path)
        if not m:
            return 404, {}, _status(404, "NotFound", "the server could not find the requested resource")
        namespace, resource, name = m[1], m[2], m[3]
        group, kind = self.RESOURCES[resource]
        verb = {"POST": "create", "DELETE": "delete", "PUT": "update", "GET": "get" if name else "list"}.get(method, method.lower())
        if (verb, resource) in self.denied:
            qualified = f"{resource}.{group}" if group else resource
            target = f' "{name}"' if name else ""
            message = (f'{qualified}{target} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" in API '
                       f'group "{group}" in the namespace "{namespace}"')
            return 403, {}, _status(403, "Forbidden", message, {"name": name, "group": group, "kind": resource} if name else {"group": group, "kind": resource})
        if verb == "create":
            return self._create(resource, group, kind, namespace, body)
        if verb == "delete":
            return self._delete(resource, group, namespace, name, body)
        if verb == "update":
            return self._update(resource, group, namespace, name, body)
        if verb == "list":
            return self._list(resource, kind, namespace, query, headers)
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
        if obj is None:
            qualified = f"{resource}.{group}" if group else resource
            return 404, {}, _status(404, "NotFound", f'{qualified} "{name}" not found', {"name": name, "group": group, "kind": resource})
        return 200, {}, obj

    def _create(self, resource, group, kind, namespace, body):
        try:
            obj = json.loads(body)
        except ValueError:
            return 400, {}, _status(400, "BadRequest", "the object provided is unrecognized (must be of type " + kind + ")")
        name = obj.get("metadata", {}).get("name")
        causes = []
        if not name:
            causes.append({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"})
        if obj.get("kind") != kind:
            return 400, {}, _status(400, "BadRequest", f"the object provided is unrecognized (must be of type {kind})")
        if resource == "jobs":
            template = obj.get("spec", {}).get("template", {}).get("spec", {})
            if template.get("restartPolicy") not in ("Never", "OnFailure"):
                causes.append({"reason": "FieldValueNotSupported", "message": f'Unsupported value: "{template.get("restartPolicy")}": supported values: "OnFailure", "Never"', "field": "spec.template.spec.restartPolicy"})
            if not template.get("containers"):
                causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.template.spec.containers"})
        if obj.get("metadata", {}).get("namespace") not in (None, namespace):
            return 400, {}, _status(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        if causes:
            qualified = f"{kind}.{group}" if group else kind
            message = f'{qualified} "{name}" is invalid: ' + ", ".join(f'{c["field"]}: {c["message"]}' for c in causes)
            return 422, {}, _status(422, "Invalid", message, {"name": name, "group": group, "kind": kind, "causes": causes})
        with self.lock:
            key = (resource, namespace, name)
            if key in self.objects:
                qualified = f"{resource}.{group}" if group else resource
                return 409, {}, _status(409, "AlreadyExists", f'{qualified} "{name}" already exists', {"name": name, "group": group, "kind": resource})
            metadata = obj.setdefault("metadata", {})
            self.version = getattr(self, "version", 1000) + 1
            metadata.update(namespace=namespace, uid=str(uuid.uuid4()), resourceVersion=str(self.version),
                            creationTimestamp=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
            if "stringData" in obj:
                obj.setdefault("data", {}).update({k: base64.b64encode(v.encode()).decode() for k, v in obj.pop("stringData").items()})
            if resource == "jobs":
                _as_the_api_server_stores_it(obj)
            self._store(key, obj)
        return 201, {}, self.encoded[key]

    def _update(self, resource, group, namespace, name, body):
        obj = json.loads(body)
        qualified = f"{resource}.{group}" if group else resource
        with self.lock:
            current = self.objects.get((resource, namespace, name))
            if current is None:
                return 404, {}, _status(404, "NotFound", f'{qualified} "{name}" not found', {"name": name, "group": group, "kind": resource})
            if obj.get("metadata", {}).get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, {}, _status(409, "Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": the object has '
                                        "been modified; please apply your changes to the latest version and try again",
                                        {"name": name, "group": group, "kind": resource})
            self.version = getattr(self, "version", 1000) + 1
            obj["metadata"].update(uid=current["metadata"]["uid"], resourceVersion=str(self.version),
                                   creationTimestamp=current["metadata"]["creationTimestamp"], namespace=namespace)
            self._store((resource, namespace, name), obj)
        return 200, {}, self.encoded[(resource, namespace, name)]

    def _store(self, key, obj):
        self.objects[key] = obj
        self.encoded[key] = json.dumps(obj).encode()
        self.encoded_metadata[key] = json.dumps({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                 "metadata": obj.get("metadata", {})}).encode()

    def _delete(self, resource, group, namespace, name, body=b""):
        try:
            options = json.loads(body) if body else {}
        except ValueError:
            return 400, {}, _status(400, "BadRequest", "the body of the request was in an unknown format")
        qualified = f"{resource}.{group}" if group else resource
        with self.lock:
            current = self.objects.get((resource, namespace, name))
            wanted = (options.get("preconditions") or {}).get("uid")
            if current is not None and wanted and wanted != current["metadata"]["uid"]:
                return 409, {}, _status(409, "Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": Precondition '
                                        f'failed: UID in precondition: {wanted}, UID in object meta: {current["metadata"]["uid"]}',
                                        {"name": name, "group": group, "kind": resource})
            obj = self.objects.pop((resource, namespace, name), None)
            self.encoded.pop((resource, namespace, name), None)
            self.encoded_metadata.pop((resource, namespace, name), None)
            if obj is None:
                return 404, {}, _status(404, "NotFound", f'{qualified} "{name}" not found', {"name": name, "group": group, "kind": resource})
            uid = obj["metadata"]["uid"]
            for key, dependent in list(self.objects.items()):  # the garbage collector, at once
                if any(ref.get("uid") == uid for ref in dependent.get("metadata", {}).get("ownerReferences", [])):
                    del self.objects[key]
                    del self.encoded[key]
                    self.encoded_metadata.pop(key, None)
        return 200, {}, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": name, "group": group, "kind": resource, "uid": uid}}

    def _list(self, resource, kind, namespace, query, headers):
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        unquote = __import__("urllib.parse").parse.unquote
        selector = unquote(params.get("labelSelector", ""))
        fields = [term.replace("==", "=").partition("=") for term in filter(None, unquote(params.get("fieldSelector", "")).split(","))]
        # Metadata only, as the API server answers `Accept: ...;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`.
        metadata_only = "as=PartialObjectMetadataList" in (headers.get("Accept") or "")
        encoded = self.encoded_metadata if metadata_only else self.encoded
        with self.lock:
            items = [encoded[key] for key, o in sorted(self.objects.items()) if key[0] == resource
                     and key[1] == namespace and _selected(selector, o["metadata"].get("labels", {}))
                     and all(str(_field(o, k)) == v for k, _, v in fields)]
        # Chunking as the API server does it: `limit` items, and an opaque `continue` token while more remain
        # (here the offset, base64-encoded; the real token is opaque too and must be sent back percent-encoded).
        metadata = {"resourceVersion": str(len(self.objects))}
        offset = 0
        if params.get("continue"):
            try:
                offset = int(base64.b64decode(__import__("urllib.parse").parse.unquote(params["continue"])))
            except ValueError:
                return 400, {}, _status(400, "BadRequest", "continue key is not valid: illegal base64 data")
        if int(params.get("limit") or 0) > 0:
            end = offset + int(params["limit"])
            if end < len(items):
                metadata["continue"] = base64.b64encode(str(end).encode()).decode()
                metadata["remainingItemCount"] = len(items) - end
            items = items[offset:end]
        else:
            items = items[offset:]
        if metadata_only:
            head = json.dumps({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
        else:
            head = json.dumps({"kind": kind + "List", "apiVersion": "batch/v1" if resource == "jobs" else "v1",
                               "metadata": metadata})
        return 200, {}, head[:-1].encode() + b', "items": [' + b", ".join(items) + b"]}"


def _fields_v1(value):
    """The FieldsV1 set of a JSON value, as server-side apply records it in managedFields."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields_v1(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return {f'k:{{"name":"{v["name"]}"}}': {".": {}, **_fields_v1(v)} for v in value}
    return {}


def _as_the_api_server_stores_it(job):
    """Gives a created Job what a real API server adds, so lists are as large as real ones: spec defaults, the
    managedFields of its creator and of the Job controller, and the status the controller writes."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = job.setdefault("spec", {})
    uid = job["metadata"]["uid"]
    selector_labels = {"batch.kubernetes.io/controller-uid": uid}
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec["selector"] = {"matchLabels": dict(selector_labels)}
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", {}).update(
        {**selector_labels, "batch.kubernetes.io/job-name": job["metadata"]["name"],
         "controller-uid": uid, "job-name": job["metadata"]["name"]})
    pod = template.setdefault("spec", {})
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        container.setdefault("imagePullPolicy", "Always")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    job["metadata"].setdefault("labels", {})
    job["metadata"]["generation"] = 1
    status = {"active": 1, "ready": 0, "startTime": now, "terminating": 0, "uncountedTerminatedPods": {}}
    job["metadata"]["managedFields"] = [
        {"manager": "kube-actions-runner", "operation": "Update", "apiVersion": "batch/v1", "time": now,
         "fieldsType": "FieldsV1", "fieldsV1": _fields_v1({"metadata": {"labels": job["metadata"]["labels"],
                                                                        "annotations": job["metadata"].get("annotations", {})},
                                                           "spec": spec})},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "batch/v1", "time": now,
         "fieldsType": "FieldsV1", "fieldsV1": _fields_v1({"status": status}), "subresource": "status"},
    ]
    job["status"] = status


def make_tls(directory):
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost; returns paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    directory = pathlib.Path(directory)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-actions-runner test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": directory / "ca.crt", "cert": directory / "server.crt", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {k: str(v) for k, v in paths.items()}


def kubeconfig(kube, ca_path, namespace="github-runners"):
    ca = base64.b64encode(pathlib.Path(ca_path).read_bytes()).decode()
    return f"""apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: {kube.url}
    certificate-authority-data: {ca}
contexts:
- name: test
  context:
    cluster: fake
    user: runner-sa
    namespace: {namespace}
users:
- name: runner-sa
  user:
    token: {kube.token}
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the fake GitHub and Kubernetes APIs on loopback.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--tls-dir", help="write a test CA and certificates here and serve HTTPS")
    parser.add_argument("--queued-jobs", type=int, default=0, help="queued jobs 1..N in octo/repo")
    parser.add_argument("--job-ranges", default="", help="more queued jobs: FIRST-LAST[,FIRST-LAST...]")
    parser.add_argument("--rate-limit", type=int, default=5000, help="GitHub's primary rate limit (requests an hour)")
    parser.add_argument("--job-controller", action="store_true", help="create a pod for each Job, as the Job controller does")
    parser.add_argument("--api-prefix", default="", help="serve GitHub under this prefix, as GHES does (/api/v3)")
    parser.add_argument("--app-key-out", help="act as a GitHub App too: write its new private key (PEM) here")
    parser.add_argument("--app-installations", default="octo",
                        help="with --app-key-out: accounts the App is installed on, ACCOUNT[:User][,...]")
    args = parser.parse_args()
    tls = make_tls(args.tls_dir) if args.tls_dir else None
    # No Job controller by default here: the benchmark holds thousands of Jobs and measures the service, not pods.
    github = FakeGitHub(tls=tls, rate_limit=args.rate_limit, prefix=args.api_prefix)
    kube = FakeKubernetes(tls=tls, job_controller=args.job_controller)
    if args.app_key_out:
        pathlib.Path(args.app_key_out).write_text(github.enable_app())
        for entry in filter(None, args.app_installations.split(",")):
            account, _, kind = entry.partition(":")
            github.add_installation(account, account_type=kind or "Organization")
    github.latency = kube.latency = args.latency
    for i in range(1, args.queued_jobs + 1):
        github.add_job("octo", "repo", i)
    for span in filter(None, args.job_ranges.split(",")):
        first, last = map(int, span.split("-"))
        for i in range(first, last + 1):
            github.add_job("octo", "repo", i)
    # As a process of its own (the benchmark), the fakes hold thousands of Jobs: one of Python's full garbage
    # collections then stops the event loop for about 50 ms, which the benchmark would count as the service's time.
    # What they allocate has no reference cycles to speak of, so collection is off.
    gc.disable()
    print(json.dumps({"github": github.url, "kubernetes": kube.url, "github_token": github.token,
                      "kube_token": kube.token, "ca": tls and tls["ca"], "github_app_id": github.app_id,
                      "github_app_installations": sorted(github.installations)}), flush=True)
    threading.Event().wait()
