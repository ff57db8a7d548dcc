"""Raw per-request rows, an opt-in (`--keep-requests`), written as Parquet (pyarrow).

The analysis never needs them (it reads the per-second histograms); they are for a user who
wants to look at individual requests. Rows are buffered for about a second and written as
one row group per flush, so memory stays bounded however long the run is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("intended", pa.float64()),  # epoch seconds the request was scheduled for
        ("start", pa.float64()),  # epoch seconds it was sent
        ("end", pa.float64()),  # epoch seconds it completed
        ("latency_ms", pa.float64()),  # from the actual send
        ("stage", pa.int32()),
        ("error", pa.string()),  # null for a success; "HTTP 503", "ConnectionError", ...
        ("error_type", pa.string()),  # SageMaker's error type, when the answer had one
        # --stream (null otherwise): time to first token from the actual send, the gaps
        # between token-bearing payload parts, output tokens counted from the parts, and
        # input tokens (approximate: ~4 characters per token).
        ("ttft_ms", pa.float64()),
        ("itl_mean_ms", pa.float64()),
        ("itl_max_ms", pa.float64()),
        ("tokens_out", pa.int32()),
        ("tokens_in", pa.int32()),
    ]
)


class RequestLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = pq.ParquetWriter(str(path), SCHEMA)
        self._rows: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
        self.written = 0

    def add(
        self,
        intended: float | None,
        start: float,
        end: float,
        latency_ms: float,
        stage: int | None,
        error: str | None,
        streamed: dict[str, Any] | None = None,
        error_type: str | None = None,
    ) -> None:
        ttft = gaps = out = tokens_in = None
        if streamed is not None:
            tokens_in = streamed.get("tokens_in")
            if streamed.get("ttft") is not None:
                ttft, gaps = streamed["ttft"] * 1000.0, streamed["gaps"]
                out = streamed["tokens_out"]
        row = (intended, start, end, latency_ms, stage, error, error_type, ttft,
               sum(gaps) / len(gaps) * 1000.0 if gaps else None,
               max(gaps) * 1000.0 if gaps else None, out, tokens_in)  # fmt: skip
        for name, value in zip(SCHEMA.names, row, strict=True):
            self._rows[name].append(value)

    def flush(self) -> None:
        n = len(self._rows["end"])
        if n:
            self._writer.write_table(pa.table(self._rows, schema=SCHEMA))
            self.written += n
            for column in self._rows.values():
                column.clear()

    def close(self) -> None:
        self.flush()
        self._writer.close()
