"""A local DummyJSON-compatible HTTP server with fault injection.

Tests, the offline demo and the benchmark talk to it over real sockets, so the pipeline's HTTP
client is exercised exactly as against https://dummyjson.com. The contract it implements is
`/work/shared/dummyjson/API.md` (envelope, paging, 400/301/404, select, rate limit); faults let
tests reproduce every way the real service or the network has been seen to misbehave.
"""

from __future__ import annotations

import contextlib
import math
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from pipeline.schema import ENDPOINTS

DEFAULT_LIMIT = 30
SELECTABLE = frozenset({"products", "users"})
RATE_LIMIT_MESSAGE = "request limit exceeded, please wait a few seconds"
FAULT_KINDS = frozenset(
    {
        "status", "close", "truncate", "stall", "body", "drop_key", "drop_total",
        "total_delta", "bad_record", "duplicate", "short", "empty", "mutate",
    }
)  # fmt: skip
# Kinds that answer (or hang up) instead of serving the page.
_TERMINAL = frozenset({"status", "close", "body"})


class Dataset:
    """Records per endpoint, kept as compact JSON bytes so a page is a cheap bytes join.

    Pre-serialising once is what lets one process serve a million carts at benchmark speed.
    """

    def __init__(self, records: Mapping[str, list[bytes]]) -> None:
        unknown = set(records) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints: {sorted(unknown)}")
        self._records = {name: list(records.get(name, ())) for name in ENDPOINTS}

    @classmethod
    def from_records(cls, records: Mapping[str, Iterable[Mapping[str, Any]]]) -> Dataset:
        """Build from Python objects (any iterables, e.g. `datagen.generate()` output)."""
        return cls({name: [orjson.dumps(r) for r in rows] for name, rows in records.items()})

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        """Read `{endpoint}.jsonl` files; a missing file means an empty endpoint.

        Lines are kept verbatim (no parse): one JSON object per line is already a valid record
        body, and skipping the parse keeps loading a million carts to about a second.
        """
        directory = Path(directory)
        records: dict[str, list[bytes]] = {}
        for name in ENDPOINTS:
            path = directory / f"{name}.jsonl"
            if path.exists():
                with path.open("rb") as fh:
                    records[name] = [line.rstrip(b"\r\n") for line in fh if line.strip()]
        if not records:
            raise FileNotFoundError(f"no {{carts,products,users}}.jsonl in {directory}")
        return cls(records)

    def count(self, endpoint: str) -> int:
        return len(self._records[endpoint])

    def records(self, endpoint: str) -> list[bytes]:
        """The serialised records of an endpoint (the live list: do not mutate)."""
        return self._records[endpoint]

    def page(self, endpoint: str, skip: int, limit: int) -> list[bytes]:
        """Records `skip..skip+limit` with DummyJSON's rule that `limit=0` means "to the end"."""
        rows = self._records[endpoint]
        return rows[skip:] if limit == 0 else rows[skip : skip + limit]


@dataclass
class Fault:
    """One injected misbehaviour; `times=None` applies forever, else it counts down to zero."""

    kind: str
    endpoint: str | None = None
    skip: int | None = None
    times: int | None = 1
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, endpoint: str, skip: int) -> bool:
        return (
            (self.times is None or self.times > 0)
            and self.endpoint in (None, endpoint)
            and self.skip in (None, skip)
        )


class _BadRequest(Exception):
    pass


def _non_negative(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if raw.startswith("-") and raw[1:].isdigit():
        raise _BadRequest(f"Invalid '{name}' - must be a non-negative number")
    if not (raw.isascii() and raw.isdigit()):
        raise _BadRequest(f"Invalid '{name}' - must be a number")
    return int(raw)


def _select(row: bytes, fields: list[str]) -> bytes:
    record = orjson.loads(row)
    if not isinstance(record, dict):
        return row
    keys = ["id", *(f for f in fields if f != "id")]
    return orjson.dumps({k: record[k] for k in keys if k in record})


class _RateLimiter:
    """Fixed window per client address, with DummyJSON's headers on every response."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate_limit needs requests >= 1 and window > 0")
        self.limit, self.window = limit, window
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, client: str) -> tuple[bool, dict[str, str]]:
        now = time.time()
        with self._lock:
            start, count = self._windows.get(client, (now, 0))
            if now >= start + self.window:
                start, count = now, 0
            count += 1
            self._windows[client] = (start, count)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - count)),
            "X-RateLimit-Reset": str(math.ceil(start + self.window)),
        }
        if count > self.limit:
            headers["Retry-After"] = str(math.ceil(self.window))
            return False, headers
        return True, headers


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog of 5 drops parallel benchmark connects
    app: DummyJSONServer

    def server_bind(self) -> None:
        """Bind as HTTPServer does, without its reverse DNS lookup of the address
        (``socket.getfqdn``): a local server needs no name, and must not wait on a resolver."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse pooled connections
    server_version = "FakeDummyJSON/1.0"
    wbufsize = 1 << 16  # headers and a small body leave in one send()
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr access log."""

    def do_GET(self) -> None:
        self.server.app._handle(self)

    def reply(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str = "application/json; charset=utf-8",
        content_length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header(
            "Content-Length", str(len(body) if content_length is None else content_length)
        )
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self.reply(status, orjson.dumps(obj), headers)


class DummyJSONServer:
    """DummyJSON look-alike on a real socket (`127.0.0.1`, free port by default).

    Use as a context manager or call `start()`/`stop()`. `latency` delays every request (the
    benchmark's stand-in for network distance); `rate_limit=(requests, window_seconds)` turns on
    DummyJSON's fixed-window 429 behaviour. Faults are added with `add_fault()`.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        self.dataset = dataset
        self.host, self.port = host, port
        self.latency = latency
        self._limiter = _RateLimiter(*rate_limit) if rate_limit else None
        self._faults: list[Fault] = []
        self._log: list[tuple[str, dict[str, str]]] = []
        self._arrivals: list[float] = []  # time.monotonic() of each request in _log
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DummyJSONServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"fakeapi-{self.port}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and hang up idle keep-alive connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DummyJSONServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- request log -----------------------------------------------------------------------
    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """Snapshot of `(path, query)` for every request received, in arrival order."""
        with self._lock:
            return list(self._log)

    def windows(self) -> dict[str, tuple[float, float]]:
        """Per path, when its first and last request arrived (``time.monotonic()``): which
        extracts ran side by side, whatever the processes' clocks say."""
        found: dict[str, tuple[float, float]] = {}
        with self._lock:
            for (path, _), at in zip(self._log, self._arrivals, strict=True):
                first, _last = found.get(path, (at, at))
                found[path] = (first, at)
        return found

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._arrivals.clear()

    # -- faults ----------------------------------------------------------------------------
    def add_fault(
        self,
        kind: str,
        *,
        endpoint: str | None = None,
        skip: int | None = None,
        times: int | None = 1,
        **options: Any,
    ) -> Fault:
        """Inject `kind` into valid list requests on `endpoint`/`skip` (None matches any).

        Kinds and their options: `status` (status=500, headers={}, message), `close` (hang up
        without a response), `truncate` (Content-Length beyond the bytes sent), `stall`
        (seconds=5, then answer normally), `body` (body=b"<html>...", content_type),
        `drop_key`, `drop_total`, `total_delta` (delta=1), `bad_record` (index=0,
        value="oops"), `duplicate` (first record = previous page's last; no-op at skip 0),
        `short` (count=1 fewer), `empty`, `mutate` (fn(envelope) -> envelope).
        Every matching rule applies (e.g. stall + short). The returned `Fault` is live: its
        `times` shows how many applications are left.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if kind == "mutate" and not callable(options.get("fn")):
            raise ValueError("mutate fault needs fn=callable(envelope) -> envelope")
        fault = Fault(kind, endpoint, skip, times, options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_faults(self, endpoint: str, skip: int) -> list[Fault]:
        with self._lock:
            taken = [f for f in self._faults if f.matches(endpoint, skip)]
            for f in taken:
                if f.times is not None:
                    f.times -= 1
        return taken

    # -- request handling ------------------------------------------------------------------
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self._log.append((path, query))
            self._arrivals.append(time.monotonic())
        if self.latency > 0 and self._stopping.wait(self.latency):
            h.close_connection = True
            return
        headers: dict[str, str] = {}
        if self._limiter is not None:
            allowed, headers = self._limiter.hit(h.client_address[0])
            if not allowed:
                h.reply_json(429, {"message": RATE_LIMIT_MESSAGE}, headers)
                return
        if len(path) > 1 and path.endswith("/"):
            location = path.rstrip("/") or "/"
            if parts.query:
                location += "?" + parts.query
            h.reply(301, b"", {**headers, "Location": location})
            return
        endpoint = path[1:]
        if endpoint not in ENDPOINTS:
            h.reply_json(404, {"message": f"Path '{path}' not found"}, headers)
            return
        try:
            skip = _non_negative(query, "skip", 0)
            limit = _non_negative(query, "limit", DEFAULT_LIMIT)
        except _BadRequest as exc:
            h.reply_json(400, {"message": str(exc)}, headers)
            return
        self._serve_page(h, endpoint, skip, limit, query, headers)

    def _serve_page(
        self,
        h: _Handler,
        endpoint: str,
        skip: int,
        limit: int,
        query: Mapping[str, str],
        headers: dict[str, str],
    ) -> None:
        faults = self._take_faults(endpoint, skip)
        for fault in faults:
            if fault.kind == "stall" and self._stopping.wait(fault.options.get("seconds", 5.0)):
                h.close_connection = True
                return
        terminal = next((f for f in faults if f.kind in _TERMINAL), None)
        if terminal is not None:
            self._answer_terminal(h, terminal, headers)
            return

        rows = self.dataset.records(endpoint)
        items = self.dataset.page(endpoint, skip, limit)
        fields = [f.strip() for f in query.get("select", "").split(",") if f.strip()]
        if fields and endpoint in SELECTABLE:
            items = [_select(row, fields) for row in items]
        total, with_key, with_total = len(rows), True, True
        for fault in faults:
            o = fault.options
            if fault.kind == "short":
                items = items[: max(0, len(items) - o.get("count", 1))]
            elif fault.kind == "empty":
                items = []
            elif fault.kind == "duplicate" and items and skip > 0:
                items[0] = rows[min(skip, len(rows)) - 1]
            elif fault.kind == "bad_record" and items:
                items[min(o.get("index", 0), len(items) - 1)] = orjson.dumps(o.get("value", "oops"))
            elif fault.kind == "total_delta":
                total += o.get("delta", 1)
            elif fault.kind == "drop_key":
                with_key = False
            elif fault.kind == "drop_total":
                with_total = False

        fields_out = []
        if with_key:
            fields_out.append(b'"%s":[%s]' % (endpoint.encode(), b",".join(items)))
        if with_total:
            fields_out.append(b'"total":%d' % total)
        fields_out.append(b'"skip":%d,"limit":%d' % (skip, len(items)))
        body = b"{" + b",".join(fields_out) + b"}"
        for fault in faults:
            if fault.kind == "mutate":
                body = orjson.dumps(fault.options["fn"](orjson.loads(body)))

        if any(f.kind == "truncate" for f in faults):
            # Promise the whole body, deliver half, hang up: the client sees an incomplete read.
            h.close_connection = True
            h.reply(200, body[: len(body) // 2], headers, content_length=len(body) + 1)
            return
        h.reply(200, body, headers)

    def _answer_terminal(self, h: _Handler, fault: Fault, headers: dict[str, str]) -> None:
        o = fault.options
        if fault.kind == "close":
            h.close_connection = True  # no status line at all
        elif fault.kind == "status":
            status = int(o.get("status", 500))
            message = o.get("message", f"injected {status}")
            h.reply_json(status, {"message": message}, {**headers, **o.get("headers", {})})
        else:  # body
            raw = o.get("body", b"<html>not json</html>")
            h.reply(
                200,
                raw.encode() if isinstance(raw, str) else raw,
                headers,
                content_type=o.get("content_type", "text/html; charset=utf-8"),
            )


def serve(
    dataset: Dataset,
    host: str = "127.0.0.1",
    port: int = 0,
    latency: float = 0.0,
    rate_limit: tuple[int, float] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, announcing `serving URL` on one flushed stdout line.

    Scripts wait for that line (and read the port from it), so nothing else goes to stdout.
    """
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    server = DummyJSONServer(dataset, host=host, port=port, latency=latency, rate_limit=rate_limit)
    try:
        with server:
            print(f"serving {server.url}", flush=True)
            while not done.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_rate_limit(text: str) -> tuple[int, float]:
    """`"100/10"` -> `(100, 10.0)`: requests per window seconds."""
    count, sep, window = text.partition("/")
    if not sep:
        raise ValueError(f"rate limit must look like REQUESTS/SECONDS, got {text!r}")
    return int(count), float(window)


__all__ = [
    "DEFAULT_LIMIT",
    "ENDPOINTS",
    "FAULT_KINDS",
    "Dataset",
    "DummyJSONServer",
    "Fault",
    "parse_rate_limit",
    "serve",
]
