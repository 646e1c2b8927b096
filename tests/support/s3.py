"""A real S3-compatible server on 127.0.0.1 for the tests (moto in server mode), and a proxy in
front of it that can answer 503 SlowDown or drop connections, as a struggling store does.

The pipeline talks to them over HTTP with boto3, exactly as it talks to AWS: nothing is mocked.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

BUCKET = "shop-data"
PREFIX = "etl"

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>TEST</RequestId></Error>"
)


def s3_env(endpoint: str, **extra: str) -> dict[str, str]:
    """The standard AWS settings pointing at ``endpoint``, and nothing from this host's
    ~/.aws (a developer's real profile must never be used by a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LUIGI_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        **extra,
    )
    return env


class AtomicMotoServer(ThreadedMotoServer):
    """moto's threaded server answering one request at a time.

    moto checks ``If-None-Match``/``If-Match`` and then writes, without a lock: two racing
    conditional PUTs could both pass. S3 makes each conditional write atomic; serialising the
    requests gives the test server the same guarantee (moto is bound by one GIL anyway).
    """

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        one_at_a_time = threading.Lock()

        def serialised(environ: dict[str, Any], start_response: Any) -> Any:
            with one_at_a_time:
                return list(app(environ, start_response))

        self._server = make_server(
            self._ip_address, self._port, serialised, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class ObjectStore:
    """A moto S3 server on a free 127.0.0.1 port with one bucket, and a client to inspect it."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server = AtomicMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=BUCKET)

    def root(self, prefix: str = PREFIX) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def keys(self, prefix: str = PREFIX) -> list[str]:
        """Every key under ``prefix``, relative to it, sorted."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{prefix}/"
        )
        return sorted(
            obj["Key"][len(prefix) + 1 :] for page in pages for obj in page.get("Contents", [])
        )

    def read(self, key: str, prefix: str = PREFIX) -> bytes:
        """The object at ``prefix/key`` (``key`` alone with an empty prefix)."""
        full = f"{prefix}/{key}" if prefix else key
        return self.client.get_object(Bucket=BUCKET, Key=full)["Body"].read()

    def etags(self, prefix: str = PREFIX) -> dict[str, tuple[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{prefix}/"
        )
        return {
            obj["Key"]: (obj["ETag"], obj["LastModified"])
            for page in pages
            for obj in page.get("Contents", [])
        }

    def download(self, dest: Path, prefix: str = PREFIX) -> Path:
        """Copy every object under ``prefix`` to ``dest`` (keys as relative paths)."""
        for key in self.keys(prefix):
            path = dest / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.read(key, prefix))
        return dest

    def multipart_uploads(self) -> list[str]:
        return [
            u["Key"] for u in self.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        ]

    def stop(self) -> None:
        """Stop the server and forget every bucket and object: moto keeps them per process, not
        per server, so the next test's store would otherwise hold this one's objects."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()
        self.server.stop()


@contextmanager
def object_store() -> Iterator[ObjectStore]:
    store = ObjectStore()
    try:
        yield store
    finally:
        store.stop()


@dataclass(frozen=True)
class Request:
    """One request the store answered, as S3 names it: ``op`` is LIST, HEAD, GET, PUT, COPY,
    DELETE (one key), DELETE_MANY (``keys``, in the request's order), or a multipart step
    (CREATE_MPU, PART, COMPLETE_MPU, ABORT_MPU). ``key`` is the object key (bucket excluded)."""

    op: str
    key: str
    status: int
    keys: tuple[str, ...] = ()


def s3_operation(method: str, target: str, headers: Any, body: bytes, status: int) -> Request:
    """The ``Request`` of one path-style HTTP request to the store."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    key = unquote(url.path.lstrip("/").partition("/")[2])
    keys: tuple[str, ...] = ()
    if method == "GET" and ("list-type" in query or not key):
        op, key = "LIST", query.get("prefix", [""])[0]
    elif method == "GET":
        op = "GET"
    elif method == "PUT":
        op = "PART" if "uploadId" in query else "COPY" if "x-amz-copy-source" in headers else "PUT"
    elif method == "POST":
        if "delete" in query:
            op, keys = "DELETE_MANY", tuple(re.findall(r"<Key>(.*?)</Key>", body.decode()))
        else:
            op = "CREATE_MPU" if "uploads" in query else "COMPLETE_MPU"
    elif method == "DELETE":
        op = "ABORT_MPU" if "uploadId" in query else "DELETE"
    else:
        op = method
    return Request(op, key, status, keys)


class FaultyProxy:
    """An HTTP proxy to the object store that can misbehave like a real one under load, and
    keeps the log of what the store answered (``requests``), in the order it answered.

    ``slowdown(every, count)``: of the next ``count`` requests, every one whose number is not a
    multiple of ``every`` is answered 503 SlowDown (so no request needs more than ``every``
    attempts). ``drop_after(n)``: after ``n`` more requests, every connection is closed unanswered.
    ``drop_at(match, count)``: the first request ``match`` accepts and the ``count - 1`` after it
    are closed unanswered (a store gone at a chosen step, then back).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.seen = 0
        self.refused = 0
        self.slow_every = 0
        self.slow_until = 0
        self.drop_from: int | None = None
        self.drop_match: Callable[[Request], bool] | None = None
        self.drop_left = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    length = int(self.headers.get("Content-Length") or 0)
                    return self.rfile.read(length) if length else b""
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    data += self.rfile.read(size)
                    self.rfile.readline()  # the CRLF after a chunk
                    if size == 0:
                        return data

            def handle_one(self) -> None:
                body = self.body()
                verdict = proxy.verdict(
                    s3_operation(self.command, self.path, self.headers, body, 0)
                )
                if verdict == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if verdict == "slowdown":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOWDOWN)))
                    self.end_headers()
                    self.wfile.write(SLOWDOWN)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                hop = ("connection", "transfer-encoding", "content-length")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                done = s3_operation(self.command, self.path, self.headers, body, resp.status)
                with proxy.lock:
                    proxy.requests.append(done)
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def verdict(self, request: Request) -> str:
        with self.lock:
            self.seen += 1
            n = self.seen
            if self.drop_match is not None and self.drop_match(request):
                self.drop_match = None  # found: this request and the next drop_left - 1 drop
            if self.drop_match is None and self.drop_left > 0:
                self.drop_left -= 1
                return "drop"
            if self.drop_from is not None and n > self.drop_from:
                return "drop"
            if n <= self.slow_until and n % self.slow_every:
                self.refused += 1
                return "slowdown"
            return "pass"

    def slowdown(self, every: int, count: int) -> None:
        with self.lock:
            self.slow_every, self.slow_until = every, self.seen + count

    def drop_at(self, match: Callable[[Request], bool], count: int) -> None:
        with self.lock:
            self.drop_match, self.drop_left = match, count

    def drop_after(self, n: int) -> None:
        with self.lock:
            self.drop_from = self.seen + n

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
