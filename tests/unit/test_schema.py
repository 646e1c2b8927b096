"""The schema against docs/data.md: the data dictionary and the personal-data lists must match it.

The page is read as a user reads it (its markdown tables and lists), so it cannot drift from
``pipeline/schema.py``: a renamed, reordered, added or undocumented column fails here.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from pipeline import schema
from pipeline.storage.layout import Partition
from tests.support import REPO

PAGE = (REPO / "docs" / "data.md").read_text()
TICKED = re.compile(r"`([^`]+)`")


def section(title: str) -> str:
    """The text of the page's ``## <title>`` section, up to the next heading."""
    _, found, rest = PAGE.partition(f"\n## {title}\n")
    assert found, f"docs/data.md has no section {title!r}"
    return re.split(r"\n#{2,3} ", rest, maxsplit=1)[0]


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each markdown table: (the bold `file` names before it, its rows of cells but the header)."""
    found: list[tuple[list[str], list[list[str]]]] = []
    names: list[str] = []
    rows: list[list[str]] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            rows = None
            names += re.findall(r"\*\*`([^`]+)`\*\*", line)
            continue
        if rows is None:  # the header row starts a table
            rows = []
            found.append((names, rows))
            names = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not re.fullmatch(r":?-+:?", cells[0]):
            rows.append(cells)
    return found


def data_dictionary() -> dict[str, list[tuple[str, str]]]:
    """The data dictionary: file -> [(column, meaning)] in the order documented."""
    files: dict[str, list[tuple[str, str]]] = {}
    for names, rows in tables(section("Data dictionary")):
        assert names, f"a table with no file named before it: {rows[:1]}"
        columns = []
        for cell, meaning in rows:
            assert re.fullmatch(r"`[^`]+`(, `[^`]+`)*", cell), f"not a column list: {cell!r}"
            columns += [(name, meaning) for name in TICKED.findall(cell)]
        for name in names:
            assert name not in files, f"{name} documented twice"
            files[name] = columns
    return files


def test_the_docs_document_every_table_with_its_columns_in_order() -> None:
    documented = data_dictionary()
    declared = {
        t.file: [(c.name, c.description) for c in t.columns] for t in schema.TABLES.values()
    }
    assert sorted(documented) == sorted(declared)  # no file missing, none extra
    for file, columns in declared.items():
        assert [c for c, _ in documented[file]] == [c for c, _ in columns], file  # names, order
        assert documented[file] == columns, file  # and each described as the schema says


def test_every_column_and_raw_field_has_a_description_and_money_is_dollars() -> None:
    for table in schema.TABLES.values():
        for column in table.columns:
            assert column.description.strip(), (table.name, column.name)
            if column.money:
                assert column.kind == "number" and "dollars" in column.description, column
    for endpoint in schema.RAW.values():
        for field in fields(endpoint.record):
            assert field.description.strip(), (endpoint.name, field.name)


def fields(record: schema.Record) -> list[schema.Field]:
    """Every field in declaration order, each nested record's right after its parent."""
    out: list[schema.Field] = []
    for f in record.fields:
        out.append(f)
        if f.items is not None:
            out += fields(f.items)
    return out


def ignored(record: schema.Record) -> set[str]:
    return set(record.ignored).union(*(ignored(f.items) for f in record.fields if f.items))


def test_the_docs_list_what_is_kept_and_dropped_per_endpoint() -> None:
    text = section("Personal data")
    (_, rows), *_ = tables(text)
    kept = {endpoint.strip("`"): TICKED.findall(cell) for endpoint, cell, _ in rows}
    assert kept == {e.name: [f.name for f in fields(e.record)] for e in schema.RAW.values()}
    dropped = {
        m[1]: set(TICKED.findall(m[2]))
        for m in re.finditer(r"^- `(\w+)`: (.*?)(?=^- |\n\n)", text, flags=re.M | re.S)
    }
    assert dropped == {e.name: ignored(e.record) for e in schema.RAW.values()}


def test_kept_and_ignored_names_never_overlap_and_field_names_are_unique() -> None:
    def check(record: schema.Record) -> None:
        names = [f.name for f in record.fields]
        assert len(set(names)) == len(names), record.name
        assert not set(names) & set(record.ignored), record.name
        for f in record.fields:
            assert (f.items is not None) == (f.kind in ("object", "list")), f
            if f.items is not None:
                check(f.items)

    for endpoint in schema.RAW.values():
        check(endpoint.record)


def test_registry_names_and_the_partition_layout_agree(tmp_path: Path) -> None:
    assert schema.ENDPOINTS == ("carts", "products", "users")
    assert schema.INSIGHTS == ("user_summary", "category_summary", "cart_details")
    part = Partition(tmp_path, datetime(2026, 11, 25, 17))
    for name in schema.ENDPOINTS:
        assert part.raw(name) == part.dir / schema.RAW[name].file
    for name in ("users", "products", "carts"):
        assert part.cleaned(name) == part.dir / schema.CLEANED[f"cleaned_{name}"].file
    assert part.catalogue == part.dir / schema.CLEANED["product_catalogue"].file
    for name in schema.INSIGHTS:
        assert part.insight(name) == part.dir / schema.INSIGHT_TABLES[name].file


def test_a_column_name_means_one_type_in_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    assert schema.column_kinds()["postal_code"] == "text"
    clash = schema.Table("x", "insights", (schema.Column("age", "text", "as text"),))
    monkeypatch.setitem(schema.TABLES, "x", clash)
    with pytest.raises(TypeError, match="column 'age' has two types"):
        schema.column_kinds()
