"""The 3GPP-style CSV export of a generated month, read through the shipped map, gives
the findings of the Parquet month (the benchmark's CSV is the same data)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

import telediag

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate_month, write_3gpp_csv


def test_3gpp_csv_export_gives_the_findings_of_the_parquet_month(tmp_path: Path) -> None:
    table = generate_month(60_000, seed=3)
    parquet = tmp_path / "month.parquet"
    pq.write_table(table, parquet)
    csv = write_3gpp_csv(table, tmp_path / "month-3gpp.csv")
    head = csv.read_text(encoding="utf-8").splitlines()[1]
    assert ",20080701" in head  # local compact times
    cmap = ROOT / "column-maps" / "3gpp-ts32298.yaml"
    from_csv = telediag.scan(csv, column_map=cmap, tz="Asia/Shanghai")
    from_parquet = telediag.scan(parquet, tz="Asia/Shanghai")
    for result in (from_csv, from_parquet):
        rep = result.report
        assert rep.rows_read == rep.rows_used + rep.rows_set_aside == table.num_rows
    assert from_csv.report.set_aside == from_parquet.report.set_aside

    def key(r: telediag.ScanResult) -> list[tuple[str, str, int, str]]:
        f = r.findings
        cols = [f["rule_id"], f["msisdn"], f["record_count"], f["first_seen"].astype(str)]
        return sorted(zip(*cols, strict=True))

    assert len(from_parquet.findings) >= 10
    assert key(from_csv) == key(from_parquet)
