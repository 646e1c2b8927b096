"""Our own CSVs (``cleaned/``, ``insights/``), written and read back by pyarrow.

Written batch after batch (``CsvWriter``): prepared as Arrow tables (money to cents, formulas
neutralised: ``values.prepare``), encoded by pyarrow on the caller's threads, text always quoted,
and appended in order; each write starts the file's way to disk (``atomic.start_writeback``).
Read back with the declared column types (``values.CSV_TYPES``), whole (``read_csv``) or in
batches (``csv_batches``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipeline.concurrency import THREADS, ordered_map
from pipeline.storage.atomic import start_writeback
from pipeline.storage.formats.prefetch import prefetch
from pipeline.storage.formats.values import CSV_TYPES, prepare

#: Rows per CSV chunk: what one thread prepares (money and neutralised text) and encodes at once.
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


def _encode(table: pa.Table, money: Iterable[str], header: bool) -> pa.Buffer:
    """``table``'s rows as CSV bytes: pyarrow encodes them without the GIL, in one batch (its
    default of 1024 rows took 12% more CPU)."""
    options = pa_csv.WriteOptions(include_header=header, batch_size=CSV_CHUNK_ROWS)
    out = pa.BufferOutputStream()
    pa_csv.write_csv(prepare(table, money), out, options)
    return out.getvalue()


@dataclass(frozen=True)
class Encoded:
    """Rows of a ``CsvWriter``'s file, encoded (``CsvWriter.encode``) and not yet written."""

    columns: tuple[str, ...]  # of the writer that encoded them: another writer refuses them
    chunks: list[pa.Buffer]
    rows: int


class CsvWriter:
    """One CSV file written frame after frame, as one ``write_csv`` of them all would write it.

    The header comes from ``columns``, so a file that gets no rows still has it. Rows are
    encoded in chunks of ``CSV_CHUNK_ROWS``. Encoding is apart from writing so that it runs on
    several threads: a frame given to ``write`` has its chunks encoded side by side and written
    as they come (memory holds a chunk per thread, not the file); a task's own threads may
    ``encode`` their batches (memory then holds the batches they have done, encoded) and hand
    them to ``write`` in order. ``path`` is a temporary path that the caller renames
    (``atomic.atomic_path``).
    """

    def __init__(
        self, path: str | os.PathLike[str], columns: Sequence[str], money: Iterable[str] = ()
    ) -> None:
        self.columns, self.money, self.rows = list(columns), tuple(money), 0
        self._out = pa.OSFile(os.fspath(path), "wb")
        try:
            empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
            self._out.write(_encode(empty, (), header=True))
        except BaseException:
            self._out.close()
            raise

    def encode(self, frame: pd.DataFrame | pa.Table) -> Encoded:
        """``frame``'s rows as this file's CSV bytes. Touches no file: any thread may call it."""
        table = self._table(frame)
        return Encoded(tuple(self.columns), list(self._chunks(table, threads=1)), table.num_rows)

    def write(self, frame: pd.DataFrame | pa.Table | Encoded) -> int:
        """Append ``frame``'s rows (its columns must be ``columns``, in order); return them."""
        if isinstance(frame, Encoded):
            if list(frame.columns) != self.columns:
                raise ValueError(f"rows encoded for {list(frame.columns)}, not {self.columns}")
            chunks: Iterable[pa.Buffer] = frame.chunks
            rows = frame.rows
        else:
            table = self._table(frame)
            chunks, rows = self._chunks(table, THREADS), table.num_rows
        for chunk in chunks:
            self._out.write(chunk)
        self.rows += rows
        start_writeback(self._out.fileno())
        return rows

    def _table(self, frame: pd.DataFrame | pa.Table) -> pa.Table:
        table = frame
        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if table.column_names != self.columns:
            raise ValueError(f"columns {table.column_names} are not {self.columns}")
        return table

    def _chunks(self, table: pa.Table, threads: int) -> Iterator[pa.Buffer]:
        """The encoded chunks of ``table`` in order, encoded on ``threads`` threads."""
        starts = range(0, table.num_rows, CSV_CHUNK_ROWS)

        def chunk(start: int) -> pa.Buffer:
            return _encode(table.slice(start, CSV_CHUNK_ROWS), self.money, header=False)

        return ordered_map(chunk, starts, min(threads, len(starts)))  # one chunk: no pool

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
