"""Raw per-request rows, an opt-in (`--keep-requests`), written as Parquet (pyarrow).

The analysis never needs them (it reads the per-second histograms); they are for a user who
wants to look at individual requests. Rows are buffered for about a second and written as
one row group per flush, so memory stays bounded however long the run is.
"""

from __future__ import annotations

from pathlib import Path

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
        error_type: str | None = None,
    ) -> None:
        row = (intended, start, end, latency_ms, stage, error, error_type)
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
