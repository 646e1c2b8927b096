"""Security end to end: CSV injection, file permissions, personal data kept by allowlist, URL
schemes, TLS verification."""

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

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.storage.formats import CSV_TYPES
from tests.support import FIXTURES, PARTITION, REPO, Run, pipeline_env, run_luigi

pytestmark = pytest.mark.slow

FAST_FAIL = ("--api-retries", "1", "--api-backoff-factor", "0.01")
RISKY = re.compile(r"^[=+\-@\t\r]")
#: Columns holding numbers in any CSV we write (money is written as 0.00).
NUMERIC = {c for c, t in CSV_TYPES.items() if str(t) in ("int64", "double")} | {
    "carts", "total_items", "total_spent", "total_spent_discounted", "total_sales",
    "total_items_sold", "total_sales_discounted", "total", "discounted_total", "difference",
    "discounted_difference", "api_line_total", "line_no",
}  # fmt: skip
#: Real DummyJSON responses (copied from ../shared/dummyjson/samples).
SAMPLES = REPO / "tests" / "fixtures" / "samples"
#: The allowlist, written out here on purpose rather than read from pipeline.schema: every field
#: (dotted path) a raw file may hold. Whatever else the API sends must never reach the disk.
ALLOWED = {
    "carts": {"id", "userId", "total", "discountedTotal", "products", "products.id",
              "products.price", "products.quantity", "products.total",
              "products.discountedTotal"},
    "products": {"id", "title", "category", "brand", "price"},
    "users": {"id", "firstName", "lastName", "gender", "age", "address", "address.address",
              "address.city", "address.state", "address.postalCode", "address.country"},
}  # fmt: skip
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def fixture_records() -> dict[str, list[dict[str, Any]]]:
    return {
        name: [orjson.loads(line) for line in (FIXTURES / f"{name}.jsonl").open("rb")]
        for name in ("carts", "products", "users")
    }


def sample_records() -> dict[str, list[dict[str, Any]]]:
    """Every record of the sample responses, per endpoint (file names start with it)."""
    records: dict[str, list[dict[str, Any]]] = {"carts": [], "products": [], "users": []}
    for path in sorted(SAMPLES.glob("*.json")):
        endpoint = path.name.split("_")[0]
        records[endpoint] += orjson.loads(path.read_bytes())[endpoint]
    return records


def fields(record: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every field, in nested objects and lists of objects too."""
    for key, value in record.items():
        path = prefix + key
        yield path, value
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                yield from fields(item, path + ".")


def strings(value: Any) -> Iterator[str]:
    """Every string inside ``value``."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from strings(item)


def private_values(records: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Strings (4+ characters) found only under fields outside ``ALLOWED``: none may be stored."""
    kept: set[str] = set()
    dropped: set[str] = set()
    for endpoint, rows in records.items():
        for record in rows:
            for path, value in fields(record):
                if path not in ALLOWED[endpoint]:
                    dropped.update(strings(value))
                elif not isinstance(value, dict | list):
                    kept.update(strings(value))
    found = {s for s in dropped if len(s) >= 4 and not any(s in k for k in kept)}
    # "user" is also the pipeline's own word: the history's level of per-customer rows (a role
    # of that name in the API's records is no personal datum).
    return found - {"user"}


def stored_paths(path: Path) -> set[str]:
    """Every field path of every record of a JSON Lines file."""
    return {p for line in path.open("rb") for p, _ in fields(orjson.loads(line))}


def leaked(values: set[str], text: str) -> set[str]:
    """The ``values`` that occur in ``text`` as a whole (not as part of a longer word)."""
    return {v for v in values if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text)}


TEXT_SUFFIXES = {".csv", ".json", ".jsonl", ".md", ".html", ".log"}


def everything(root: Path) -> str:
    """The text of every file under ``root`` (binary files too: their strings are UTF-8)."""
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in sorted(root.rglob("*")) if p.is_file()
    )


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
    prom = data / "logs" / "etl_pipeline.prom"  # 0644 for node_exporter: no personal data
    assert prom.stat().st_mode & 0o777 == 0o644
    for path in paths:
        if not path.is_symlink() and path != prom:
            mode = path.stat().st_mode
            assert not mode & 0o007, f"{path}: {oct(mode)}"  # nothing for "other"
            assert not mode & 0o020, f"{path}: {oct(mode)}"  # no group write


def test_no_personal_data_reaches_disk_or_logs_even_when_users_misbehave(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    records = fixture_records()
    private = private_values(records)
    assert {"emilyspass", "emily.johnson@x.dummyjson.com", "900-590-289", "Smith"} <= private
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

    for endpoint in ALLOWED:
        assert stored_paths(data / PARTITION / f"jsons/{endpoint}.jsonl") == ALLOWED[endpoint]
    for text in (result.output, failed.output, everything(data)):
        assert not leaked(private, text)
        assert not any(line in text for line in raw_lines)  # no full record either


#: Fields the API might add one day, one per endpoint and nested level, with telltale values.
NEW_FIELDS = {"carts": "loyaltyTier", "products": "carbonFootprint", "users": "shoeSize"}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    """One full run against a fake API serving the real sample records, plus new fields."""
    records = sample_records()
    for endpoint, name in NEW_FIELDS.items():
        for record in records[endpoint]:
            record[name] = f"NEW-{name}-{record['id']}"
    for cart in records["carts"]:
        for line in cart["products"]:
            line["giftNote"] = f"NEW-giftNote-{cart['id']}"
    for user in records["users"]:
        user["address"]["geohash"] = f"NEW-geohash-{user['id']}"
    data = tmp_path_factory.mktemp("samples") / "data"
    # The samples are pages, not a whole shop: carts name users and products that are not in
    # them, so those two gates are relaxed; rejected/*.csv is then written and checked too.
    tolerate = '{"cart_user_exists": 10, "line_product_exists": 50}'
    with DummyJSONServer(Dataset.from_records(records)) as server:
        result = run_luigi(server.url, data, "--quality-max-bad-rows", tolerate)
    assert result.returncode == 0, result.output
    assert (data / "latest" / "manifest.json").exists()
    assert list((data / PARTITION / "rejected").glob("*.csv"))
    return data, result


def test_every_sample_field_is_allowlisted_or_absent_from_the_data_root(
    sample_run: tuple[Path, Run],
) -> None:
    data, result = sample_run
    samples = sample_records()
    sent = {e: {p for r in rows for p, _ in fields(r)} for e, rows in samples.items()}
    assert "reviews.reviewerEmail" in sent["products"]  # the real shapes, nested ones too
    assert "address.coordinates.lat" in sent["users"] and "bank.iban" in sent["users"]
    for endpoint, paths in sent.items():
        assert (
            stored_paths(data / PARTITION / f"jsons/{endpoint}.jsonl") == paths & ALLOWED[endpoint]
        )
    # No other file has such a field either (CSV headers, keys of the JSON facts) ...
    not_allowed = set().union(*(sent[e] - ALLOWED[e] for e in sent))
    for path in (data / PARTITION).rglob("*"):
        if path.suffix == ".csv":
            assert not_allowed.isdisjoint(path.read_text().splitlines()[0].replace('"', "")
                                          .split(",")), path  # fmt: skip
        elif path.suffix == ".json":
            assert not_allowed.isdisjoint(p for p, _ in fields(orjson.loads(path.read_bytes())))
    # ... nor any value found only under such a field, in any file or in the console output.
    private = private_values(samples)
    assert {"emilyspass", "Dooley, Kozey and Cronin", "GB74MH2UZLR9TRPHYNU8F8"} <= private
    for text in (everything(data), result.output):
        assert not leaked(private, text)


def test_no_email_address_from_the_samples_is_stored(sample_run: tuple[Path, Run]) -> None:
    data, result = sample_run
    emails = {m for p in SAMPLES.glob("*.json") for m in EMAIL.findall(p.read_text())}
    assert len(emails) >= 10  # users' and reviewers' addresses
    text = everything(data)
    # No address in a text file; binary files (Arrow, Parquet) are searched for the sample ones.
    texts = [p.read_text() for p in data.rglob("*") if p.suffix in TEXT_SUFFIXES]
    assert not any(EMAIL.search(text) for text in texts)
    assert not {e for e in emails if e in text or e in result.output}


def test_a_field_the_api_adds_is_dropped_and_logged_once_per_endpoint(
    sample_run: tuple[Path, Run],
) -> None:
    data, result = sample_run
    assert "NEW-" not in everything(data)
    warnings = [line for line in result.log.splitlines() if "does not declare" in line]
    assert sorted(w.split("pipeline.extract: ", 1)[1] for w in warnings) == [
        f"{endpoint}: the API sent field(s) that pipeline/schema.py does not declare: "
        f"{names}; dropped, not stored"
        for endpoint, names in (
            ("carts", "loyaltyTier, products.giftNote"),
            ("products", "carbonFootprint"),
            ("users", "address.geohash, shoeSize"),
        )
    ]
    stats = orjson.loads((data / PARTITION / "_stats/Extract-users.json").read_bytes())
    assert {"shoeSize", "address.geohash", "email", "address.coordinates"} <= set(
        stats["dropped_fields"]
    )


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
