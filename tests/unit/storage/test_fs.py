"""The data root: a local path or s3://bucket/prefix, and nothing else."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pipeline import config
from pipeline.storage.fs import DataRootError, ObjectPath, parse_root
from pipeline.storage.layout import Partition


def test_a_local_path_stays_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_root(str(tmp_path)) == tmp_path
    monkeypatch.chdir(tmp_path)
    assert parse_root("data") == tmp_path / "data"
    assert parse_root("odd:name") == tmp_path / "odd:name"  # a colon alone is no scheme


def test_an_s3_url_is_a_bucket_and_a_prefix() -> None:
    assert parse_root("s3://shop-data/etl/hourly/") == ObjectPath("shop-data", "etl/hourly")
    assert parse_root("s3://shop-data") == ObjectPath("shop-data", "")
    assert parse_root("S3://shop-data//etl") == ObjectPath("shop-data", "etl")


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("gs://shop/etl", "data root 'gs://shop/etl': unsupported scheme 'gs://'; "
         "use a local path or s3://bucket/prefix"),
        ("hdfs://nn:8020/etl", "unsupported scheme 'hdfs://'"),
        ("file:///srv/shop", "unsupported scheme 'file://'"),
        ("https://shop.example/etl", "unsupported scheme 'https://'"),
        ("s3://", "data root 's3://': '' is not a valid S3 bucket name"),
        ("s3://Shop_Data/etl", "'Shop_Data' is not a valid S3 bucket name"),
        ("s3://shop-data/etl/../other", "'.' and '..' are not allowed in the prefix"),
    ],
)  # fmt: skip
def test_any_other_root_is_refused_naming_it(root: str, message: str) -> None:
    with pytest.raises(DataRootError) as err:
        parse_root(root)
    assert message in str(err.value)


def test_the_setting_that_named_a_bad_root_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_DATA_DIR", "gs://shop/etl")
    with pytest.raises(config.ConfigError) as err:
        config.paths().root()
    assert str(err.value).startswith("PIPELINE_DATA_DIR: data root 'gs://shop/etl'")


def test_an_object_path_has_the_parts_the_layout_uses() -> None:
    root = ObjectPath("shop-data", "etl")
    part = Partition(root, datetime(2026, 11, 25, 7))  # type: ignore[arg-type]
    raw = part.raw("carts")
    assert raw == ObjectPath("shop-data", "etl/2026-11-25T07/jsons/carts.jsonl")
    assert str(raw) == "s3://shop-data/etl/2026-11-25T07/jsons/carts.jsonl"
    assert (raw.name, raw.stem, raw.parent.name) == ("carts.jsonl", "carts", "jsons")
    assert part.stats("clean_carts").stem == "CleanCarts"
    assert part.lock == ObjectPath("shop-data", "etl/2026-11-25T07/.lock")
    assert part.dir.prefix == "etl/2026-11-25T07/"
    assert ObjectPath("shop-data") / "latest" == ObjectPath("shop-data", "latest")
    assert raw.with_name("users.jsonl").key == "etl/2026-11-25T07/jsons/users.jsonl"
    with pytest.raises(TypeError), open(raw, "rb"):  # type: ignore[call-overload]
        pass  # never opened as a local file by accident
