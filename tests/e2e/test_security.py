"""Security end to end: CSV injection, file permissions, secrets, URL schemes, TLS verification."""

from __future__ import annotations

import csv
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.config import DEFAULT_SECRET_FIELDS
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.storage.formats import CSV_TYPES
from tests.support import FIXTURES, PARTITION, REPO, pipeline_env, run_luigi

pytestmark = pytest.mark.slow

SECRET_FIELDS = DEFAULT_SECRET_FIELDS.split(",")
FAST_FAIL = ("--api-retries", "1", "--api-backoff-factor", "0.01")
RISKY = re.compile(r"^[=+\-@\t\r]")
#: Columns holding numbers in any CSV we write (money is written as 0.00).
NUMERIC = {c for c, t in CSV_TYPES.items() if str(t) in ("int64", "double")} | {
    "carts", "total_items", "total_spent", "total_spent_discounted", "total_sales",
    "total_items_sold", "total_sales_discounted", "total", "discounted_total", "difference",
    "discounted_difference", "api_line_total", "line_no",
}  # fmt: skip


def fixture_records() -> dict[str, list[dict[str, Any]]]:
    return {
        name: [orjson.loads(line) for line in (FIXTURES / f"{name}.jsonl").open("rb")]
        for name in ("carts", "products", "users")
    }


def secret_values(users: list[dict[str, Any]]) -> set[str]:
    """Every string (of 4+ characters) under a secret field of any user, nested ones too."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str | int | float) and len(str(value)) >= 4:
            found.add(str(value))

    for user in users:
        for name in SECRET_FIELDS:
            walk(user.get(name))
    return found


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_formula_text_is_neutralised_in_every_csv_and_numbers_are_untouched(
    tmp_path: Path,
) -> None:
    records = fixture_records()
    products = {p["id"]: p for p in records["products"]}
    products[3].update(title='=HYPERLINK("http://evil","x")', brand="@SUM(A1)")
    products[16].update(category="+cmd|' /C calc'!A0")
    products[15].update(title="\tTabbed", brand="\rReturn")
    user = records["users"][0]
    user.update(firstName="-2+3", lastName="=1+1")
    user["address"].update(city="@Phoenix", address="+1 Main St", state="\tMS")
    with DummyJSONServer(Dataset.from_records(records)) as server:
        result = run_luigi(server.url, tmp_path / "data")
    assert result.returncode == 0, result.output
    part = tmp_path / "data" / PARTITION

    csvs = sorted(part.rglob("*.csv"))
    assert len(csvs) == 7
    for path in csvs:
        for row in csv_rows(path):
            for column, cell in row.items():
                if column in NUMERIC:
                    float(cell)  # a number, written as such: never prefixed
                    assert not cell.startswith("'"), (path.name, column, cell)
                else:
                    assert not RISKY.match(cell), (path.name, column, cell)

    users = {r["user_id"]: r for r in csv_rows(part / "cleaned/cleaned_users.csv")}
    assert (users["1"]["first_name"], users["1"]["last_name"]) == ("'-2+3", "'=1+1")
    assert (users["1"]["city"], users["1"]["street"], users["1"]["state"]) == (
        "'@Phoenix", "'+1 Main St", "'\tMS",
    )  # fmt: skip
    catalogue = {r["product_id"]: r for r in csv_rows(part / "cleaned/product_catalogue.csv")}
    assert catalogue["3"]["name"] == '\'=HYPERLINK("http://evil","x")'
    assert catalogue["3"]["brand"] == "'@SUM(A1)"
    assert (catalogue["15"]["name"], catalogue["15"]["brand"]) == ("'\tTabbed", "'\rReturn")
    categories = [r["category"] for r in csv_rows(part / "insights/category_summary.csv")]
    assert "'+cmd|' /C calc'!A0" in categories
    details = csv_rows(part / "insights/cart_details.csv")
    assert {r["city"] for r in details if r["user_id"] == "1"} == {"'@Phoenix"}
    assert {r["name"] for r in details if r["product_id"] == "3"} == {
        '\'=HYPERLINK("http://evil","x")'
    }


def test_data_is_not_world_readable_even_under_a_permissive_umask(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    previous = os.umask(0)  # inherited by the run: the pipeline must set its own
    try:
        result = run_luigi(api.url, data, task="CleanCarts")
        assert result.returncode == 0, result.output
        result = run_luigi(api.url, data)
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.output
    paths = [data, *data.rglob("*")]
    assert len(paths) > 20
    for path in paths:
        if not path.is_symlink():
            mode = path.stat().st_mode
            assert not mode & 0o007, f"{path}: {oct(mode)}"  # nothing for "other"
            assert not mode & 0o020, f"{path}: {oct(mode)}"  # no group write


def test_no_secret_reaches_disk_or_logs_even_when_users_misbehave(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    users = fixture_records()["users"]
    secrets = secret_values(users)
    assert {"emilyspass", "emily.johnson@x.dummyjson.com", "900-590-289"} <= secrets
    raw_lines = {line.strip() for line in (FIXTURES / "users.jsonl").read_text().splitlines()}
    data = tmp_path / "data"
    # Faults make the users extract log retries and a re-read; none may quote a record.
    api.add_fault("close", endpoint="users", skip=0, times=1)
    api.add_fault("body", endpoint="users", skip=2, times=1, body=b"<html>busy</html>")
    api.add_fault("bad_record", endpoint="users", skip=4, times=1)
    result = run_luigi(api.url, data, "--api-backoff-factor", "0.01", "--api-page-size", "2")
    assert result.returncode == 0, result.output
    assert "retrying in" in result.output and "reading it again" in result.output

    def broken(envelope: dict) -> dict:
        envelope["users"][1]["age"] = "thirty"
        return envelope

    api.add_fault("mutate", endpoint="users", times=None, fn=broken)
    failed = run_luigi(api.url, tmp_path / "other", "--api-backoff-factor", "0.01")
    assert failed.returncode == 30
    assert "users record id=2: field 'age' = 'thirty' is not integer >= 0" in failed.output

    stored = [orjson.loads(line) for line in (data / PARTITION / "jsons/users.jsonl").open("rb")]
    assert len(stored) == len(users)
    assert all(set(SECRET_FIELDS).isdisjoint(record) for record in stored)
    # Every file but raw products: the API publishes reviewer names and e-mails in product
    # reviews, some of them users' e-mails; only user records are ours to strip.
    everything = b"".join(
        p.read_bytes() for p in data.rglob("*") if p.is_file() and p.name != "products.jsonl"
    )
    for text in (result.output, failed.output, everything.decode()):
        leaked = {s for s in secrets if s in text}
        assert not leaked
        assert not any(line in text for line in raw_lines)  # no full record either


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "file:///etc/passwd", "127.0.0.1:8080", "http://", "gopher://x"]
)
def test_only_http_and_https_base_urls_are_accepted(url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_luigi(url, data)
    assert result.returncode == 78, result.output  # refused with the settings, before scheduling
    assert (
        f"[api] base_url = {url!r} (from environment PIPELINE_API_URL): must be an http(s) URL"
    ) in result.output
    assert not data.exists()  # nothing written at all


def test_verify_false_appears_nowhere_in_the_pipeline() -> None:
    source = "\n".join(p.read_text() for p in (REPO / "pipeline").glob("*.py"))
    assert not re.search(r"verify\s*=\s*False|CERT_NONE|disable_warnings", source)


@pytest.fixture
def tls_api(fixture_dataset: Dataset, tmp_path: Path) -> Iterator[tuple[DummyJSONServer, Path]]:
    """The fixture API over HTTPS with a freshly made self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr[-200:]!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with DummyJSONServer(fixture_dataset) as server:
        httpd = server._httpd
        assert httpd is not None
        # Same file descriptor, so the running accept loop now hands out TLS connections.
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        yield server, cert


def test_tls_certificates_are_verified(
    tls_api: tuple[DummyJSONServer, Path], tmp_path: Path
) -> None:
    server, cert = tls_api
    url = server.url.replace("http://", "https://")
    env = pipeline_env(url, tmp_path / "untrusted")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(name, None)
    refused = run_luigi(url, tmp_path / "untrusted", *FAST_FAIL, env=env)
    assert refused.returncode == 30, refused.output
    assert "CERTIFICATE_VERIFY_FAILED" in refused.output
    assert server.request_count == 0  # no request was sent over the unverified connection

    # Control: the same server, its certificate trusted, works; so verification was the cause.
    env = pipeline_env(url, tmp_path / "trusted", REQUESTS_CA_BUNDLE=str(cert))
    trusted = run_luigi(url, tmp_path / "trusted", env=env)
    assert trusted.returncode == 0, trusted.output
    assert (tmp_path / "trusted/latest/manifest.json").exists()
