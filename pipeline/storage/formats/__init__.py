"""File formats: the only package that reads or writes data files, one module per format.

- ``jsonl``: raw ``jsons/*.jsonl`` in, users and products whole, carts in batches of whole carts.
- ``csv``: our own CSVs out (``CsvWriter``) and back in (``read_csv``, ``csv_batches``).
- ``ipc``: Arrow IPC files beside them (``_exact/``): money as computed, columns ready to read.
- ``values``: what a value becomes in a file (cents, formulas neutralised, column types).

Every format is pyarrow's: one engine parses the JSON, encodes and parses the CSVs and holds
the batches the business rules (pandas: ``rules/``) work on. The names callers use are
re-exported here (``formats.read_csv``); a module's own settings (``jsonl.BATCH_CARTS``,
``csv.CSV_CHUNK_ROWS``) are read where they are used, so set them on that module.
"""

from pipeline.storage.formats.csv import CsvWriter, Encoded, arrow, csv_batches, read_csv, write_csv
from pipeline.storage.formats.ipc import (
    CopyLacksColumns,
    ExactWriter,
    exact_batches,
    read_copy,
    read_exact,
    write_copy,
)
from pipeline.storage.formats.jsonl import (
    CartsOutOfOrder,
    cart_batches,
    read_products,
    read_schema,
    read_users,
)
from pipeline.storage.formats.values import (
    CSV_TYPES,
    MONEY_TYPE,
    neutralise_formulas,
    prepare,
    to_cents,
)

__all__ = [
    "CSV_TYPES",
    "MONEY_TYPE",
    "CartsOutOfOrder",
    "CopyLacksColumns",
    "CsvWriter",
    "Encoded",
    "ExactWriter",
    "arrow",
    "cart_batches",
    "csv_batches",
    "exact_batches",
    "neutralise_formulas",
    "prepare",
    "read_copy",
    "read_csv",
    "read_exact",
    "read_products",
    "read_schema",
    "read_users",
    "to_cents",
    "write_copy",
    "write_csv",
]
