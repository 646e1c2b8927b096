"""Extract: one task per endpoint writes its raw records as JSON Lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import luigi

from pipeline import config
from pipeline.api.client import ApiClient
from pipeline.extract import snapshot_endpoint
from pipeline.schema import ENDPOINTS
from pipeline.storage.atomic import target
from pipeline.tasks.base import PartitionTask


class ExtractEndpoint(PartitionTask):
    """Raw records of one endpoint as JSON Lines, only the fields the schema declares."""

    endpoint = luigi.ChoiceParameter(
        choices=ENDPOINTS, description="Which API collection to snapshot."
    )

    def stats_path(self) -> Path:
        return self.partition.stats(f"Extract-{self.endpoint}")

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {"raw": target(self.partition.raw(self.endpoint)), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        cfg, ext = config.api(), config.extract()

        def progress(done: int, total: int, page: int, pages: int) -> None:
            percent = 100 if total == 0 else int(100 * done / total)
            self.report(f"{self.endpoint}: {done}/{total} records, page {page}/{pages}", percent)

        with ApiClient(cfg.url(), cfg.client_settings()) as client:
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
                "bytes": stats.bytes,
                "dropped_fields": stats.dropped_fields,
            }
