"""Extract: one task family per endpoint (``ExtractCarts`` ...) writes its raw records as JSON
Lines.

The families are generated from ``schema.ENDPOINTS``, so an endpoint is declared once and each
extract carries its own name in the luigid visualiser and in the scheduler's task list.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import luigi
from luigi.task_register import Register

from pipeline import config
from pipeline.api.client import ApiClient
from pipeline.extract import snapshot_endpoint
from pipeline.progress import ExtractProgress
from pipeline.schema import ENDPOINTS
from pipeline.storage.atomic import target
from pipeline.storage.layout import camel
from pipeline.tasks.base import PartitionTask


class ExtractTask(PartitionTask):
    """Raw records of one endpoint as JSON Lines, only the fields the schema declares (base of
    the families below)."""

    endpoint: ClassVar[str]

    def output(self) -> dict[str, luigi.Target]:
        return {"raw": target(self.partition.raw(self.endpoint)), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        cfg, ext = config.api(), config.extract()

        with ApiClient(cfg.url(), cfg.client_settings()) as client:
            shown = ExtractProgress(client.waiting)

            def progress(done: int, total: int, page: int, pages: int) -> None:
                shown.update(done, total, page, pages)
                percent = 100 if total == 0 else int(100 * done / total)
                status = f"{self.endpoint}: {done}/{total} records, page {page}/{pages}"
                self.report(status, percent, console=shown.status)

            self.report(f"{self.endpoint}: first page", 0, console=shown.status)
            stats = snapshot_endpoint(
                client,
                self.endpoint,
                self.partition.raw(self.endpoint),
                page_size=cfg.page_size,
                concurrency=cfg.concurrency,
                max_pages=cfg.max_pages,
                rereads=ext.rereads,
                progress=progress,
            )
            return {
                "endpoint": self.endpoint,
                "source": client.base_url,
                "url": f"{client.base_url}/{self.endpoint}",
                "api_total": stats.total,
                "records": stats.records,
                "pages": stats.pages,
                "page_length": stats.page_length,
                "requests": client.request_count,
                "retries": client.retry_count,
                "throttled": client.throttled_count,
                "bytes": stats.bytes,
                "dropped_fields": stats.dropped_fields,
                "new_fields": stats.new_fields,
                "missing_fields": stats.missing_fields,
            }


def _family(endpoint: str) -> type[ExtractTask]:
    name = f"Extract{camel(endpoint)}"
    doc = f"jsons/{endpoint}.jsonl: every {endpoint} record of the API, only declared fields."
    namespace = {"endpoint": endpoint, "__module__": __name__, "__qualname__": name, "__doc__": doc}
    family = Register(name, (ExtractTask,), namespace)  # luigi's metaclass registers it
    return cast("type[ExtractTask]", family)  # a class made at run time: mypy cannot see it


#: The extract task of each endpoint: ``EXTRACTS["carts"]`` is ``ExtractCarts``.
EXTRACTS: dict[str, type[ExtractTask]] = {e: _family(e) for e in ENDPOINTS}
globals().update({cls.__name__: cls for cls in EXTRACTS.values()})  # importable, picklable
