"""Our own CSVs (``cleaned/``, ``insights/``), written and read back by pyarrow.

Written batch after batch (``CsvWriter``): prepared as Arrow tables (money to cents, formulas
neutralised: ``values.prepare``) and encoded by pyarrow straight into the file, text always
quoted; each write starts the file's way to disk (``atomic.start_writeback``). Read back with
the declared column types (``values.CSV_TYPES``), whole (``read_csv``) or in batches
(``csv_batches``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipeline.storage.atomic import start_writeback
from pipeline.storage.formats.prefetch import prefetch
from pipeline.storage.formats.values import CSV_TYPES, prepare

#: Rows per CSV chunk: memory holds one chunk's prepared copy (money and neutralised text).
CSV_CHUNK_ROWS = 1 << 17

#: Bytes of CSV parsed per batch by ``csv_batches``: some 300k rows of cleaned cart lines.
CSV_BLOCK_BYTES = 16 << 20

#: Our CSVs quote text, which may hold line breaks (a street given on two lines): read as such.
_PARSE = pa_csv.ParseOptions(newlines_in_values=True)


def _convert(columns: Sequence[str] | None) -> pa_csv.ConvertOptions:
    return pa_csv.ConvertOptions(
        column_types=CSV_TYPES,
        strings_can_be_null=False,
        include_columns=list(columns) if columns is not None else None,
    )


def read_csv(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read one of our own CSVs with fixed column types; only ``columns`` if given.

    Naming the columns skips converting the others, the bulk of the cost of reading. Each
    column comes in one piece: pandas keeps text in the Arrow chunks the parser made, and a
    ``take`` from a column in many chunks joins them all first, each time (looking the buyers
    of 10M carts up among 5M users, batch by batch, took 9 s of it).
    """
    table = pa_csv.read_csv(path, parse_options=_PARSE, convert_options=_convert(columns))
    columns = [_one_chunk(column) for column in table.columns]
    return pa.table(columns, names=table.column_names).to_pandas()


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """``column`` in one piece; text as large strings, whose offsets do not overflow at 2 GB."""
    if pa.types.is_string(column.type):
        column = column.cast(pa.large_string())
    return column.combine_chunks()


def csv_batches(path: Path, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """One of our own CSVs batch by batch (about ``CSV_BLOCK_BYTES`` each), typed as ``read_csv``
    reads it; only ``columns`` if given. Parsing runs a batch ahead of its use, on a thread."""
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=_PARSE,
        convert_options=_convert(columns),
    )
    batches = prefetch(iter(reader))
    try:
        for batch in batches:
            yield batch.to_pandas()
    finally:
        batches.close()


def arrow(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table, for a batch handed to several writers: converted once."""
    return pa.Table.from_pandas(frame, preserve_index=False)


def _write_csv(table: pa.Table, out: pa.NativeFile, money: Iterable[str], header: bool) -> None:
    """Write ``table``'s rows to ``out`` as CSV: pyarrow encodes them into the file itself, so
    no bytes pass through Python, in one batch (its default of 1024 rows took 12% more CPU)."""
    options = pa_csv.WriteOptions(include_header=header, batch_size=CSV_CHUNK_ROWS)
    pa_csv.write_csv(prepare(table, money), out, options)


class CsvWriter:
    """One CSV file written frame after frame, as one ``write_csv`` of them all would write it.

    The header comes from ``columns``, so a file that gets no rows still has it. Each frame is
    written in chunks of ``CSV_CHUNK_ROWS`` (``_write_csv``), so memory is bounded by a chunk,
    not by the file. ``path`` is a temporary path that the caller renames
    (``atomic.atomic_path``).
    """

    def __init__(
        self, path: str | os.PathLike[str], columns: Sequence[str], money: Iterable[str] = ()
    ) -> None:
        self.columns, self.money, self.rows = list(columns), tuple(money), 0
        self._out = pa.OSFile(os.fspath(path), "wb")
        try:
            empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
            _write_csv(empty, self._out, (), header=True)
        except BaseException:
            self._out.close()
            raise

    def write(self, frame: pd.DataFrame | pa.Table) -> int:
        """Append ``frame``'s rows (its columns must be ``columns``, in order); return them."""
        table = frame
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if table.column_names != self.columns:
            raise ValueError(f"columns {table.column_names} are not {self.columns}")
        for start in range(0, table.num_rows, CSV_CHUNK_ROWS):
            _write_csv(table.slice(start, CSV_CHUNK_ROWS), self._out, self.money, header=False)
        self.rows += table.num_rows
        start_writeback(self._out.fileno())
        return table.num_rows

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], money: Iterable[str] = ()) -> None:
    """Write ``frame`` as CSV to ``path`` (a temporary path: the caller renames it)."""
    with CsvWriter(path, list(frame.columns), money) as out:
        out.write(frame)
