"""Arrow IPC files: the exact copy of what was computed, and a CSV's columns ready to read.

``_exact/*.arrow`` beside the CSVs: the cart lines with money as computed (``ExactWriter``, for
the tasks that sum money) and a few columns of the users' CSV (``write_copy``, for the tasks that
would otherwise parse it). Reading either back is a copy, not a parse.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from pipeline.storage.atomic import start_writeback
from pipeline.storage.formats.values import CSV_TYPES, prepare


class ExactWriter:
    """An Arrow IPC file written batch by batch, every value as computed (a temporary path).

    For the tasks that sum money: the CSVs hold it rounded to cents, and a sum of rounded lines
    can be cents away from the rounded sum when prices have fractions of a cent. Reading it back
    (``exact_batches``) is a copy, not a parse.
    """

    def __init__(self, path: str | os.PathLike[str], empty: pd.DataFrame) -> None:
        self._schema = pa.Schema.from_pandas(empty, preserve_index=False)
        self._file = pa.OSFile(str(path), "wb")
        try:
            self._out = pa.ipc.new_file(self._file, self._schema)
        except BaseException:
            self._file.close()
            raise

    def write(self, frame: pd.DataFrame | pa.Table) -> None:
        if isinstance(frame, pa.Table):
            self._out.write_table(frame.cast(self._schema))
        else:
            self._out.write_table(pa.Table.from_pandas(frame, self._schema, preserve_index=False))
        start_writeback(self._file.fileno())

    def __enter__(self) -> ExactWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._out.close()
        finally:
            self._file.close()


def write_copy(frame: pd.DataFrame, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
    """Write ``columns`` of ``frame`` to an Arrow file (a temporary path), as reading them back
    from a CSV of ``frame`` gives them (``read_csv``): text with formulas neutralised as written
    and empty where missing, each column of its CSV type.

    For the tasks that read a few columns of a big CSV (the users'): reading the copy
    (``read_copy``) takes milliseconds where parsing the CSV for them took a quarter of a second
    at 500k users. Numbers with fractions are not copied: a CSV holds money at cents.
    """
    odd = [c for c in columns if CSV_TYPES.get(c, pa.float64()) == pa.float64()]
    if odd:
        raise ValueError(f"columns {odd} hold fractions or are no CSV column: read the CSV")
    schema = _copy_schema(columns)
    table = prepare(pa.Table.from_pandas(frame[list(columns)], preserve_index=False))
    copied = []
    for field, column in zip(schema, table.columns, strict=True):
        column = column.cast(field.type)  # a column with no value at all comes as Arrow's null
        if field.type == pa.large_string():
            column = pc.fill_null(column, "")
        copied.append(column.combine_chunks())
    with pa.OSFile(str(path), "wb") as out, pa.ipc.new_file(out, schema) as ipc:
        ipc.write_table(pa.table(copied, schema=schema))


def _copy_schema(columns: Sequence[str]) -> pa.Schema:
    """Text as large strings in one piece, as ``read_csv`` gives it."""
    types = {pa.string(): pa.large_string()}
    return pa.schema([(c, types.get(CSV_TYPES[c], CSV_TYPES[c])) for c in columns])


class CopyLacksColumns(ValueError):
    """A copy (``write_copy``) was made of other columns than those asked for: by an earlier
    version that copied fewer."""


def read_copy(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of a file of ``write_copy``: what ``read_csv`` gives of the CSV it copies.

    Raises CopyLacksColumns when the copy does not hold them all.
    """
    with pa.OSFile(str(path)) as source:
        lacking = [c for c in columns if c not in pa.ipc.open_file(source).schema.names]
    if lacking:
        raise CopyLacksColumns(f"{path} holds no column {', '.join(lacking)}")
    return read_exact(path, columns)[list(columns)]


def _exact_reader(
    source: pa.NativeFile, columns: Sequence[str] | None
) -> pa.ipc.RecordBatchFileReader:
    if columns is None:
        return pa.ipc.open_file(source)
    names = pa.ipc.open_file(source).schema.names
    fields = [names.index(c) for c in columns]
    return pa.ipc.open_file(source, options=pa.ipc.IpcReadOptions(included_fields=fields))


def exact_batches(path: Path, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """A file of ``ExactWriter`` batch by batch as written; only ``columns`` if given.

    Read into memory a batch at a time, not memory-mapped: mapped pages would count in the
    process's memory up to the whole file.
    """
    with pa.OSFile(str(path)) as source:
        reader = _exact_reader(source, columns)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i).to_pandas()


def read_exact(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a whole file of ``ExactWriter``; only ``columns`` if given."""
    with pa.OSFile(str(path)) as source:
        return _exact_reader(source, columns).read_all().to_pandas()
