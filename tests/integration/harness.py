"""Helpers for newsalert integration tests (Python 3 standard library only).

A test file defines ``def test_*(ctx)`` functions and ends with::

    if __name__ == "__main__":
        harness.main(globals())

ctest runs it as ``python3 tests/integration/test_X.py --build BUILD_DIR`` with
``NA_SOURCE_DIR`` set, and ``NA_TEST_BROKERS=127.0.0.1:PORT`` when a real
broker runs (scripts/lib/broker.sh).

Skips: a test that cannot run here (no broker, a missing tool or package)
raises ``Skip``; a file that needs a broker and has none skips as a whole.
Outside CI a skip is reported as such: the file exits with SKIP_RETURN_CODE
(77), which ctest shows as "Skipped" (CMakeLists.txt sets the property).
With ``CI=true`` (``in_ci()``) a skip is a failure: the test command must
run every test there.

Building blocks:

- FeedServer: local HTTP server for feed documents (ETag / Last-Modified
  with 304, injected statuses, hangs, redirects), records every request.
- WebhookReceiver: local chat-webhook endpoint recording every request, with
  modes up / down / fail-N / rate-limit (429 + Retry-After) / slow and a
  body size limit.
- Proc: a subprocess whose stdout and stderr go to files.
- free_port(), unique_topic(), wait_until(), kcat_consume(), kcat_produce().
"""

import argparse
import email.utils
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP_NO_BROKER = "SKIP: no broker (NA_TEST_BROKERS unset)"
# The exit status of a file that skipped (ctest's SKIP_RETURN_CODE).
SKIP_RETURN_CODE = 77


def in_ci():
    """True when the CI environment variable says so (CI=true, as CI
    services set it): skips are failures there."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class Skip(Exception):
    """Raise inside a test that cannot run here (a missing broker, tool or
    package). Outside CI it is reported as a skip (exit status 77 for the
    file); with CI=true it fails the test."""


class TestTimeout(Exception):
    """Raised inside a test that ran past its time limit."""


# --------------------------------------------------------------------------
# small utilities


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_topic(prefix="na.test"):
    """Return a topic name unique to this process and call.

    Legal Kafka characters only ([A-Za-z0-9._-]), so tests sharing one broker
    never share topics.
    """
    if not re.fullmatch(r"[A-Za-z0-9._-]+", prefix):
        raise ValueError("bad topic prefix %r" % prefix)
    return "%s.%d-%s" % (prefix, os.getpid(), secrets.token_hex(4))


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; return that value.

    Raises TimeoutError naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def http_date(ts):
    """Format a Unix time as an HTTP-date (RFC 9110, IMF-fixdate)."""
    return email.utils.formatdate(ts, usegmt=True)


def _parse_http_date(text):
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return dt.timestamp()


class Request:
    """One request seen by a FeedServer or WebhookReceiver.

    Attributes: method, path (with query), headers (dict, lower-case names,
    last value wins), header_list (all (name, value) pairs as received), body
    (bytes), json (parsed body or None), time (time.monotonic()), wall
    (time.time()), status (what the server answered).
    """

    def __init__(self, method, path, header_list, body):
        self.method = method
        self.path = path
        self.header_list = list(header_list)
        self.headers = {k.lower(): v for k, v in self.header_list}
        self.body = body
        self.json = None
        if body:
            try:
                self.json = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                self.json = None
        self.time = time.monotonic()
        self.wall = time.time()
        self.status = None
        self.done = None  # time.monotonic() when the answer was sent (or given up)

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return "<%s %s -> %s>" % (self.method, self.path, self.status)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, closed connection) is part of the
        # tests' normal business; anything else is a harness bug: show it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:0 in a background thread."""

    def __init__(self, handle):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "newsalert-test/1"

            def log_message(self, fmt, *args):  # quiet by default
                pass

            def _read_body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n > 0 else b""

            def _any(self):
                body = self._read_body()
                req = Request(self.command, self.path, self.headers.items(), body)
                handle(self, req)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests = []
        self._closing = threading.Event()
        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def _start(self):
        """Serve from a background thread (subclasses call this last)."""
        self._thread.start()

    def url(self, path="/"):
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    def _record(self, req):
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()

    def _answered(self):
        with self._cond:
            self._cond.notify_all()

    @staticmethod
    def _send(h, req, status, body=b"", ctype=None, headers=None):
        req.status = status
        req.done = time.monotonic()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if ctype and status not in (204, 304):
            h.send_header("Content-Type", ctype)
        if status in (204, 304):
            body = b""
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if req.method != "HEAD" and body:
            h.wfile.write(body)

    def requests(self, path=None):
        """Return a copy of the requests seen so far (for `path` only if given)."""
        with self._lock:
            reqs = list(self._requests)
        if path is not None:
            reqs = [r for r in reqs if r.path == path]
        return reqs

    def count(self, path=None):
        return len(self.requests(path))

    def clear(self):
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate, timeout, what=None, answered=True):
        """Wait until predicate(list of requests) is true.

        The list holds the requests already answered (all requests received,
        including held ones, when answered=False). Returns that list; raises
        TimeoutError (with a summary of what was seen) after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = [r for r in self._requests if r.status is not None or not answered]
                if predicate(done):
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        "timed out after %.1f s waiting for %s; saw %d request(s): %s"
                        % (timeout, what or "requests", len(done), done[-10:])
                    )
                self._cond.wait(min(left, 0.2))

    def wait_count(self, n, timeout, path=None):
        """Wait until at least n requests (to `path` if given) were answered."""
        return self.wait_for(
            lambda rs: len([r for r in rs if path is None or r.path == path]) >= n,
            timeout,
            what="%d request(s)%s" % (n, " to " + path if path else ""),
        )

    def close(self):
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# FeedServer


class _Route:
    def __init__(self, body, ctype, etag, last_modified, headers):
        self.body = body
        self.ctype = ctype
        self.etag = etag
        self.last_modified = last_modified
        self.headers = dict(headers or {})


class FeedServer(_Server):
    """Local HTTP server for feed documents.

    feed = FeedServer({"/a.xml": (rss_bytes, "application/rss+xml")})
    feed.url("/a.xml"); feed["/b.json"] = (data, "application/feed+json")

    Each route gets a strong ETag (hash of its body) and a Last-Modified (when
    its body last changed), and answers 304 to a matching If-None-Match or,
    without If-None-Match, to an If-Modified-Since not older than
    Last-Modified. Unknown paths answer 404. Faults per path: fail() answers a
    status (optionally with Retry-After, optionally only N times), hang()
    holds the request, redirect() answers 3xx with Location, drip() sends a
    body that never ends, stream() sends a large generated body.
    """

    def __init__(self, routes=None):
        super().__init__(self._handle)
        self._routes = {}
        self._faults = {}
        for path, spec in (routes or {}).items():
            self[path] = spec
        self._start()

    def __setitem__(self, path, spec):
        body, ctype = spec
        self.set(path, body, ctype)

    def set(self, path, body, content_type="application/xml", etag=True,
            last_modified=True, headers=None):
        """Serve `body` (bytes or str, UTF-8) at `path`.

        etag: True = hash of the body, False = no ETag, str = that value.
        last_modified: True = now (kept while the body stays the same),
        False = none, number = that Unix time. headers: extra response headers.
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            old = self._routes.get(path)
            if etag is True:
                etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
            elif etag is False:
                etag = None
            if last_modified is True:
                if old is not None and old.body == body and old.last_modified:
                    last_modified = old.last_modified
                else:
                    last_modified = int(time.time())
            elif last_modified is False:
                last_modified = None
            self._routes[path] = _Route(body, content_type, etag, last_modified, headers)

    def remove(self, path):
        with self._lock:
            self._routes.pop(path, None)

    def etag(self, path):
        with self._lock:
            return self._routes[path].etag

    def fail(self, path, status, retry_after=None, count=None, body=b"error\n"):
        """Answer `status` for `path` (the next `count` times, or until clear_fault)."""
        with self._lock:
            self._faults[path] = {"kind": "status", "status": status,
                                  "retry_after": retry_after, "count": count,
                                  "body": body}

    def hang(self, path, seconds=None, count=None):
        """Hold requests to `path` for `seconds` (None: until clear_fault/close)
        before answering normally."""
        with self._lock:
            self._faults[path] = {"kind": "hang", "seconds": seconds, "count": count,
                                  "release": threading.Event()}

    def drip(self, path, chunk=b"<", every=0.2):
        """Answer 200 for `path` with a body that never ends: `chunk` every
        `every` seconds, no Content-Length, until the client gives up."""
        with self._lock:
            self._faults[path] = {"kind": "drip", "chunk": chunk, "every": every,
                                  "count": None}

    def stream(self, path, nbytes, chunk_size=1 << 16, content_length=False):
        """Answer 200 for `path` with `nbytes` of generated XML-ish bytes, streamed
        in chunks (with a Content-Length only when `content_length`)."""
        with self._lock:
            self._faults[path] = {"kind": "stream", "nbytes": nbytes,
                                  "chunk_size": chunk_size,
                                  "content_length": content_length, "count": None}

    def redirect(self, path, location, status=301):
        """Answer `status` with Location: `location` for `path`."""
        with self._lock:
            self._faults[path] = {"kind": "redirect", "status": status,
                                  "location": location, "count": None}

    def clear_fault(self, path=None):
        """Remove the fault on `path` (all faults when None); releases hangs."""
        with self._lock:
            paths = list(self._faults) if path is None else [path]
            for p in paths:
                f = self._faults.pop(p, None)
                if f and f["kind"] == "hang":
                    f["release"].set()

    def _take_fault(self, path):
        with self._lock:
            f = self._faults.get(path)
            if f is None:
                return None
            if f["count"] is not None:
                f["count"] -= 1
                if f["count"] <= 0:
                    del self._faults[path]
            return f

    def close(self):
        self.clear_fault()
        super().close()

    def _handle(self, h, req):
        self._record(req)
        route_path = req.path.split("?", 1)[0]
        fault = self._take_fault(route_path)
        try:
            if fault is not None and fault["kind"] == "status":
                hdrs = {}
                if fault["retry_after"] is not None:
                    hdrs["Retry-After"] = str(fault["retry_after"])
                self._send(h, req, fault["status"], fault["body"], "text/plain", hdrs)
                return
            if fault is not None and fault["kind"] == "redirect":
                self._send(h, req, fault["status"], b"", "text/plain",
                           {"Location": fault["location"]})
                return
            if fault is not None and fault["kind"] in ("drip", "stream"):
                self._stream(h, req, fault)
                return
            if fault is not None and fault["kind"] == "hang":
                fault["release"].wait(fault["seconds"])
                if self._closing.is_set():
                    req.status = 0
                    h.close_connection = True
                    return
            with self._lock:
                route = self._routes.get(route_path)
            if route is None:
                self._send(h, req, 404, b"not found\n", "text/plain")
                return
            hdrs = dict(route.headers)
            if route.etag:
                hdrs["ETag"] = route.etag
            if route.last_modified is not None:
                hdrs["Last-Modified"] = http_date(route.last_modified)
            if self._not_modified(req, route):
                self._send(h, req, 304, b"", None, hdrs)
                return
            self._send(h, req, 200, route.body, route.ctype, hdrs)
        finally:
            self._answered()

    def _stream(self, h, req, fault):
        req.status = 200
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        if fault["kind"] == "stream" and fault["content_length"]:
            h.send_header("Content-Length", str(fault["nbytes"]))
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            if fault["kind"] == "drip":
                while not self._closing.is_set():
                    h.wfile.write(fault["chunk"])
                    h.wfile.flush()
                    time.sleep(fault["every"])
            else:
                left = fault["nbytes"]
                block = (b"<rss><channel>" + b"x" * fault["chunk_size"])[:fault["chunk_size"]]
                while left > 0 and not self._closing.is_set():
                    n = min(left, len(block))
                    h.wfile.write(block[:n])
                    left -= n
        except (ConnectionError, OSError):
            pass  # the client gave up: what the tests expect
        req.done = time.monotonic()

    @staticmethod
    def _not_modified(req, route):
        inm = req.header("If-None-Match")
        if inm is not None:
            if route.etag is None:
                return False
            tags = [t.strip() for t in inm.split(",")]
            bare = route.etag[2:] if route.etag.startswith("W/") else route.etag
            return "*" in tags or any(
                (t[2:] if t.startswith("W/") else t) == bare for t in tags
            )
        ims = req.header("If-Modified-Since")
        if ims is not None and route.last_modified is not None:
            ts = _parse_http_date(ims)
            return ts is not None and route.last_modified <= ts
        return False


# --------------------------------------------------------------------------
# WebhookReceiver


class WebhookReceiver(_Server):
    """Local chat-webhook endpoint: records every request, answers by mode.

    Modes (set_mode("up" | "down" | "fail-N" | "rate-limit-R" | "slow-S" |
    "hang-S") or the methods): up() answers ok_status; down() answers 503;
    fail_next(n) answers 500 to the next n requests, then the previous mode
    again; rate_limit(r) answers 429 with Retry-After once r requests were
    accepted in the last second; slow(s) sleeps s seconds before answering
    ok; hang(s) holds each request s seconds and then closes the connection
    without an answer (status recorded as 0: the service never took it).
    latency(s) delays every answer by s more seconds, whatever the mode.
    max_body_bytes: larger bodies get 413, as real chat services refuse them.
    """

    def __init__(self, ok_status=200, ok_body=b"ok", max_body_bytes=None):
        super().__init__(self._handle)
        self.ok_status = ok_status
        self.ok_body = ok_body
        self.max_body_bytes = max_body_bytes
        self._mode = ("up", None)
        self._fail_left = 0
        self._fail_status = 500
        self._accepted = []  # monotonic times of accepted requests (rate limit)
        self._latency = 0.0
        self._start()

    # mode switches -------------------------------------------------------

    def up(self):
        with self._lock:
            self._mode = ("up", None)
            self._fail_left = 0

    def down(self, status=503, retry_after=None):
        with self._lock:
            self._mode = ("down", (status, retry_after))

    def fail_next(self, n, status=500):
        with self._lock:
            self._fail_left = n
            self._fail_status = status

    def rate_limit(self, per_s, retry_after=1):
        """Accept `per_s` requests a second (below 1: one every 1/per_s
        seconds), answer the rest 429 with Retry-After."""
        with self._lock:
            self._mode = ("rate", (per_s, retry_after))
            self._accepted = []

    def slow(self, seconds):
        with self._lock:
            self._mode = ("slow", seconds)

    def hang(self, seconds):
        with self._lock:
            self._mode = ("hang", seconds)

    def latency(self, seconds):
        with self._lock:
            self._latency = float(seconds)

    def set_mode(self, spec):
        """Set a mode from text: up, down, fail-N, rate-limit-R, slow-S, hang-S."""
        m = re.fullmatch(r"(up|down|fail-(\d+)|rate-limit-(\d+)|slow-([0-9.]+)|"
                         r"hang-([0-9.]+))", spec)
        if not m:
            raise ValueError("bad webhook mode %r" % spec)
        if spec == "up":
            self.up()
        elif spec == "down":
            self.down()
        elif m.group(2):
            self.fail_next(int(m.group(2)))
        elif m.group(3):
            self.rate_limit(int(m.group(3)))
        elif m.group(4):
            self.slow(float(m.group(4)))
        else:
            self.hang(float(m.group(5)))

    # queries -------------------------------------------------------------

    def unique_by_header(self, name, path=None):
        """Group requests by the value of header `name`.

        Returns {value: [requests..]} in first-seen order; requests without the
        header are grouped under None.
        """
        groups = {}
        for r in self.requests(path):
            groups.setdefault(r.header(name), []).append(r)
        return groups

    def bodies(self, path=None, status=None):
        """Parsed JSON bodies (or raw bytes when not JSON), optionally only
        those answered with `status`."""
        return [r.json if r.json is not None else r.body for r in self.requests(path)
                if status is None or r.status == status]

    # serving -------------------------------------------------------------

    def _decide(self, req):
        """(status, headers, body, delay); status None: hang up after delay."""
        with self._lock:
            extra = self._latency
            if self.max_body_bytes is not None and len(req.body) > self.max_body_bytes:
                return 413, {}, b"payload too large\n", extra
            if self._fail_left > 0:
                self._fail_left -= 1
                return self._fail_status, {}, b"injected failure\n", extra
            kind, arg = self._mode
            if kind == "hang":
                return None, {}, b"", arg + extra
            if kind == "down":
                status, retry_after = arg
                hdrs = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, hdrs, b"service unavailable\n", extra
            if kind == "rate":
                per_s, retry_after = arg
                # Below one a second: one request per 1/per_s seconds.
                window = 1.0 / per_s if 0 < per_s < 1 else 1.0
                allowed = max(1, int(per_s)) if per_s > 0 else 0
                now = time.monotonic()
                self._accepted = [t for t in self._accepted if now - t < window]
                if len(self._accepted) >= allowed:
                    return 429, {"Retry-After": str(retry_after)}, b"rate limited\n", extra
                self._accepted.append(now)
            delay = arg if kind == "slow" else 0
            return self.ok_status, {}, self.ok_body, delay + extra

    def _handle(self, h, req):
        self._record(req)
        try:
            if req.method != "POST":
                self._send(h, req, 405, b"POST only\n", "text/plain", {"Allow": "POST"})
                return
            status, hdrs, body, delay = self._decide(req)
            if delay:
                self._closing.wait(delay)
            if status is None:
                # Hung: no answer at all, the connection just ends.
                req.status = 0
                req.done = time.monotonic()
                h.close_connection = True
                return
            self._send(h, req, status, body, "text/plain", hdrs)
        finally:
            self._answered()


# --------------------------------------------------------------------------
# Proc


class Proc:
    """A subprocess with stdout and stderr captured to files in `tmpdir`.

    p = Proc(["build/newsalert-producer", "--once"], tmpdir, env={"X": "1"})
    rc = p.wait(30); p.stderr_text()
    env entries extend os.environ; a value of None removes that variable.
    """

    _seq = 0

    def __init__(self, argv, tmpdir=None, env=None, cwd=None, name=None, stdin=None):
        Proc._seq += 1
        self.argv = [str(a) for a in argv]
        self.name = name or "%s-%d" % (os.path.basename(self.argv[0]), Proc._seq)
        self._own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="na-proc-")
        self.stdout_path = os.path.join(self.tmpdir, self.name + ".out")
        self.stderr_path = os.path.join(self.tmpdir, self.name + ".err")
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        stdin_arg = subprocess.DEVNULL
        if isinstance(stdin, (bytes, str)):
            data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
            in_path = os.path.join(self.tmpdir, self.name + ".in")
            with open(in_path, "wb") as f:
                f.write(data)
            stdin_arg = open(in_path, "rb")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(self.argv, stdin=stdin_arg, stdout=out,
                                          stderr=err, env=full_env, cwd=cwd)
        if stdin_arg is not subprocess.DEVNULL:
            stdin_arg.close()
        self.pid = self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGTERM):
        """Send `sig` (SIGTERM by default) unless the process has exited."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """Wait up to `timeout` seconds; return the exit code (negative for a
        signal). Raises TimeoutError with the tail of stderr."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError("%s still running after %.1f s; stderr tail:\n%s"
                               % (self.name, timeout, self.tail())) from None

    def stop(self, timeout=10):
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
        return self.popen.wait()

    def stdout_text(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout_lines(self):
        return self.stdout_text().splitlines()

    def tail(self, n=40):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def wait_for_stderr(self, pattern, timeout):
        """Wait until regex `pattern` matches stderr; return the match.

        Raises TimeoutError (also when the process exits first)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.stderr_text())
            if m:
                return m
            if self.popen.poll() is not None:
                m = rx.search(self.stderr_text())
                if m:
                    return m
                raise TimeoutError("%s exited (%s) before stderr matched %r; tail:\n%s"
                                   % (self.name, self.popen.returncode, pattern,
                                      self.tail()))
            if time.monotonic() >= deadline:
                raise TimeoutError("stderr of %s did not match %r within %.1f s; tail:\n%s"
                                   % (self.name, pattern, timeout, self.tail()))
            time.sleep(0.05)

    def close(self):
        self.stop(5)
        if self._own_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def run(argv, timeout=60, env=None, stdin=None, cwd=None):
    """Run a command to completion; return CompletedProcess (text output).

    env entries extend os.environ (None removes a variable)."""
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = str(v)
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    cp = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True,
                        timeout=timeout, env=full_env, cwd=cwd)
    cp.stdout = cp.stdout.decode("utf-8", "replace")
    cp.stderr = cp.stderr.decode("utf-8", "replace")
    return cp


# --------------------------------------------------------------------------
# Kafka through kcat


def kcat_produce(brokers, topic, messages, headers=None, timeout=30):
    """Produce messages with kcat. Each message is a str/bytes value or a
    (key, value) tuple; `headers` ({name: value}) go on every message.
    Messages must not contain the bytes 0x1e or 0x1f (used as delimiters)."""
    data = bytearray()
    keyed = any(isinstance(m, tuple) for m in messages)
    for m in messages:
        key, value = m if isinstance(m, tuple) else (b"", m)
        key = key.encode("utf-8") if isinstance(key, str) else (key or b"")
        value = value.encode("utf-8") if isinstance(value, str) else value
        if b"\x1e" in key + value or b"\x1f" in key + value:
            raise ValueError("message holds a delimiter byte")
        if keyed:
            data += key + b"\x1f"
        data += value + b"\x1e"
    argv = ["kcat", "-b", brokers, "-P", "-t", topic, "-D", "\\x1e"]
    if keyed:
        argv += ["-K", "\\x1f"]
    for k, v in (headers or {}).items():
        argv += ["-H", "%s=%s" % (k, v)]
    cp = subprocess.run(argv, input=bytes(data), capture_output=True, timeout=timeout)
    if cp.returncode != 0:
        raise RuntimeError("kcat produce to %s failed: %s"
                           % (topic, cp.stderr.decode("utf-8", "replace")))


def ledger_records(brokers, topic, count=None, timeout=30):
    """The alert records of a ledger topic (kcat_consume's dicts), without
    the partition owner records ("owner/TOPIC/P" keys, docs/delivery.md).
    count=N: wait until N alert records are there (TimeoutError after
    `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = [r for r in kcat_consume(brokers, topic, timeout=timeout)
                if not (r["key"] or "").startswith("owner/")]
        if count is None or len(recs) >= count:
            return recs
        if time.monotonic() >= deadline:
            raise TimeoutError("ledger %s holds %d of the %d alert record(s) awaited "
                               "after %.1f s" % (topic, len(recs), count, timeout))
        time.sleep(0.3)


def kcat_consume(brokers, topic, count=None, timeout=30, offset="beginning",
                 extra=()):
    """Read a topic from `offset` with kcat; return a list of dicts with
    topic, partition, offset, key, value, headers ({name: value}), ts (ms).

    count=None: whatever is there now (up to the end of every partition; []
    when the topic does not exist). count=N: keep reading (waiting for the
    topic to appear if needed) until N messages arrived or `timeout` passed
    (then TimeoutError).
    """
    deadline = time.monotonic() + timeout
    argv = ["kcat", "-b", brokers, "-C", "-t", topic, "-o", str(offset), "-J", "-q",
            "-X", "topic.metadata.refresh.interval.ms=500"] + list(extra)
    if count is None:
        argv.append("-e")
    else:
        argv += ["-c", str(count)]
    while True:
        try:
            cp = subprocess.run(argv, capture_output=True,
                                timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if count is None:
                raise TimeoutError("kcat could not read %s to its end within %.1f s"
                                   % (topic, timeout)) from None
            try:
                have = len(kcat_consume(brokers, topic, None, 10, offset, extra))
            except (TimeoutError, RuntimeError):
                have = "?"
            raise TimeoutError("topic %s holds %s of the %d message(s) awaited "
                               "after %.1f s" % (topic, have, count, timeout)) from None
        err = cp.stderr.decode("utf-8", "replace")
        if cp.returncode == 0:
            break
        if "Unknown topic or partition" not in err:
            raise RuntimeError("kcat consume from %s failed: %s" % (topic, err))
        # The topic does not exist (yet): nothing there now, or wait for it.
        if count is None:
            return []
        if time.monotonic() >= deadline:
            raise TimeoutError("topic %s did not appear within %.1f s" % (topic, timeout))
        time.sleep(0.5)
    out = []
    for line in cp.stdout.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        hdr_list = j.get("headers") or []
        out.append({
            "topic": j.get("topic"),
            "partition": j.get("partition"),
            "offset": j.get("offset"),
            "key": j.get("key"),
            "value": j.get("payload"),
            "headers": dict(zip(hdr_list[0::2], hdr_list[1::2])),
            "ts": j.get("ts"),
        })
    return out


# --------------------------------------------------------------------------
# test runner


class Context:
    """What a test function gets: paths, the broker, and owned resources.

    Attributes: name, build (build dir), source (repo root), brokers
    (NA_TEST_BROKERS or None), tmp (a fresh folder for this test).
    Resources made through the ctx are closed after the test, in reverse
    order; on failure the stderr tails of its processes are printed.
    """

    def __init__(self, name, build, source, brokers, tmp):
        self.name = name
        self.build = build
        self.source = source
        self.brokers = brokers
        self.tmp = tmp
        self._cleanups = []
        self.procs = []

    def cleanup(self, fn):
        """Call fn() after the test (last registered runs first)."""
        self._cleanups.append(fn)
        return fn

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, data):
        """Write str/bytes/json-able data to a file in tmp; return its path."""
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(data, (dict, list)):
            data = json.dumps(data, indent=2)
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(p, "wb") as f:
            f.write(data)
        return p

    def bin(self, name):
        """Path of a program in the build dir (fails the test when missing)."""
        p = os.path.join(self.build, name)
        if not os.access(p, os.X_OK):
            raise AssertionError("%s not built (looked for %s)" % (name, p))
        return p

    def src(self, *parts):
        return os.path.join(self.source, *parts)

    def topic(self, prefix="na.test"):
        return unique_topic(prefix)

    def feed_server(self, routes=None):
        s = FeedServer(routes)
        self.cleanup(s.close)
        return s

    def webhook(self, **kw):
        s = WebhookReceiver(**kw)
        self.cleanup(s.close)
        return s

    def proc(self, argv, env=None, name=None, stdin=None, cwd=None):
        p = Proc(argv, self.tmp, env=env, name=name, stdin=stdin, cwd=cwd)
        self.procs.append(p)
        self.cleanup(p.close)
        return p

    def _close(self):
        errors = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:  # report, keep cleaning
                errors.append("%s: %r" % (getattr(fn, "__qualname__", fn), e))
        return errors


def _alarm(signum, frame):
    raise TestTimeout("test ran past its time limit")


def main(ns, needs_broker=True, timeout=300):
    """Run every test_* function of module namespace `ns` and exit.

    needs_broker: skip the whole file when NA_TEST_BROKERS is unset (exit
    SKIP_RETURN_CODE; with CI=true print FAIL and exit 1).
    timeout: seconds per test (SIGALRM raises TestTimeout inside the test).
    Exit status: 1 when a test failed, else SKIP_RETURN_CODE when a test
    skipped, else 0.
    Options: --build DIR (default $NA_BUILD_DIR or ./build), -k SUBSTR (run only
    tests whose name contains it), --keep (keep temp folders).
    """
    ap = argparse.ArgumentParser(description="newsalert integration tests")
    ap.add_argument("--build", default=os.environ.get("NA_BUILD_DIR", "build"))
    ap.add_argument("-k", dest="select", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    brokers = os.environ.get("NA_TEST_BROKERS") or None
    if needs_broker and not brokers:
        if in_ci():
            print("FAIL: no broker (NA_TEST_BROKERS unset) and CI=true: a skip is "
                  "a failure in CI", flush=True)
            sys.exit(1)
        print(SKIP_NO_BROKER, flush=True)
        sys.exit(SKIP_RETURN_CODE)
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.environ.get("NA_SOURCE_DIR") or os.path.dirname(os.path.dirname(here))
    build = os.path.abspath(args.build)

    tests = [(k, v) for k, v in ns.items() if k.startswith("test_") and callable(v)]
    if args.select:
        tests = [(k, v) for k, v in tests if args.select in k]
    if not tests:
        print("no tests found")
        print("0 passed, 1 failed")
        sys.exit(1)

    script = os.path.splitext(os.path.basename(ns.get("__file__", "test")))[0]
    run_tmp = tempfile.mkdtemp(prefix="na-it-%s-" % script)
    passed = failed = skipped = 0
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    for name, fn in tests:
        tmp = os.path.join(run_tmp, name)
        os.makedirs(tmp)
        ctx = Context(name, build, source, brokers, tmp)
        t0 = time.monotonic()
        err = None
        skip = None
        signal.alarm(timeout)
        try:
            fn(ctx)
        except Skip as e:
            if in_ci():
                err = (AssertionError("skipped in CI (CI=true): %s" % e),
                       traceback.format_exc())
            else:
                skip = str(e)
        except BaseException as e:  # report and go on with the next test
            if isinstance(e, KeyboardInterrupt):
                signal.alarm(0)
                ctx._close()
                raise
            err = (e, traceback.format_exc())
        finally:
            signal.alarm(0)
        cleanup_errors = ctx._close()
        dt = time.monotonic() - t0
        if err is None and cleanup_errors:
            err = (RuntimeError("cleanup failed"), "\n".join(cleanup_errors) + "\n")
        if skip is not None:
            skipped += 1
            print("SKIP %s: %s" % (name, skip), flush=True)
        elif err is None:
            passed += 1
            print("PASS %s (%.2f s)" % (name, dt), flush=True)
        else:
            failed += 1
            e, tb = err
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print("FAIL %s: %s" % (name, reason), flush=True)
            sys.stdout.write(tb)
            for p in ctx.procs:
                print("--- stderr of %s (%s), last lines ---" % (p.name, " ".join(p.argv)))
                print(p.tail())
            sys.stdout.flush()
    signal.signal(signal.SIGALRM, old_handler)

    if failed or args.keep:
        print("temp files kept in %s" % run_tmp)
    else:
        shutil.rmtree(run_tmp, ignore_errors=True)
    if skipped:
        print("%d skipped" % skipped)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else SKIP_RETURN_CODE if skipped else 0)
