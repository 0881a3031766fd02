"""Benchmark: time ``telediag.scan`` end to end and per stage, with peak memory.

    python benchmarks/run.py                       # 1M and 10M records
    python benchmarks/run.py --records 1000000     # one size
    python benchmarks/run.py --input month.parquet # an existing file
    python benchmarks/run.py --csv --records 10000000  # the month as a 3GPP-style CSV

With ``--csv`` each month is also exported (once) as a mediation system would write it
(3GPP TS 32.298-style names, local compact times such as ``20080701000008``; see
``generate.write_3gpp_csv``) and scanned through ``column-maps/3gpp-ts32298.yaml``; the
baseline is then ``pyarrow.csv.read_csv`` of the same file (target: at most 3x).

Each size runs in a fresh subprocess so that peak memory (max RSS) belongs to that scan
alone. Data are generated once by ``benchmarks/generate.py`` (seeded) and cached under
``benchmarks/data/``. The table printed compares the scan with the time to read the same
Parquet file into Arrow (the ratio target is at most 20x) and, where a ground-truth file
exists, reports recall of the injected cases. This is a script, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TARGETS = {1_000_000: 4.0, 10_000_000: 30.0}


def ensure_data(records: int, seed: int) -> Path:
    """Generate (once) the synthetic month of ``records`` rows."""
    path = DATA / f"month-{records}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--records",
                str(records),
                "--out",
                str(path),
                "--seed",
                str(seed),
            ],
            check=True,
        )
    return path


COLUMN_MAP_3GPP = HERE.parent / "column-maps" / "3gpp-ts32298.yaml"


def ensure_csv(parquet: Path) -> Path:
    """The 3GPP-style CSV export of a generated month (written once, beside it)."""
    path = parquet.with_name(parquet.stem + "-3gpp.csv")
    if not path.exists():
        import pyarrow.parquet as pq

        sys.path.insert(0, str(HERE))
        from generate import write_3gpp_csv

        write_3gpp_csv(pq.read_table(parquet), path)
    return path


def measure(path: Path, tz: str) -> dict[str, Any]:
    """Run in the child: read-only baseline, then the full scan; report timings."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import telediag

    is_csv = path.suffix == ".csv"
    t = time.perf_counter()
    table = pacsv.read_csv(path) if is_csv else pq.read_table(path)
    read_arrow = time.perf_counter() - t
    rows = table.num_rows
    arrow_bytes = table.nbytes
    del table
    t = time.perf_counter()
    result = telediag.scan(path, tz=tz, column_map=COLUMN_MAP_3GPP if is_csv else None)
    total = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {
        "rows": rows,
        "format": "csv" if is_csv else "parquet",
        "arrow_mb": arrow_bytes / 2**20,
        "read_arrow_s": read_arrow,
        "scan_s": total,
        "peak_mb": peak_mb,
        "stages": result.timings,
        "findings": len(result.findings),
        "errors": [str(e) for e in result.errors],
        "by_root_cause": result.findings.groupby("root_cause").size().to_dict(),
    }
    truth = path.with_name(path.name.replace("-3gpp.csv", ".parquet") + ".truth.csv")
    if not truth.exists():
        truth = path.with_suffix(".truth.csv")
    if truth.exists():
        import pandas as pd

        truth_rows = pd.read_csv(truth, dtype=str)
        if "expect" not in truth_rows:  # a truth file from before near-misses were listed
            truth_rows = truth_rows.assign(expect="finding", variant="documented")
        found = set(zip(result.findings["root_cause"], result.findings["msisdn"], strict=True))
        flagged = truth_rows.apply(lambda r: (r["root_cause"], r["msisdn"]) in found, axis=1)
        truth_rows = truth_rows.assign(flagged=flagged)
        expected = truth_rows[truth_rows["expect"] == "finding"]
        hit = expected["flagged"]
        out["recall"] = expected.groupby("root_cause")["flagged"].mean().to_dict()
        out["recall_total"] = float(hit.mean())
        truth_pairs = set(zip(expected["root_cause"], expected["msisdn"], strict=True))
        out["unexpected_findings"] = int(sum(1 for p in found if p not in truth_pairs))
        near = truth_rows[truth_rows["expect"] == "none"]
        out["false_alarms"] = int(near["flagged"].sum())
        out["near_misses"] = len(near)
        by_variant = truth_rows.groupby(["root_cause", "expect", "variant"])["flagged"]
        out["variants"] = [
            {
                "root_cause": rc,
                "expect": ex,
                "variant": v,
                "n": int(g.size),
                "flagged": int(g.sum()),
            }
            for (rc, ex, v), g in by_variant
        ]
    return out


def run_child(path: Path, tz: str) -> dict[str, Any]:
    """Measure one file in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--tz", tz],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def print_table(results: list[dict[str, Any]]) -> None:
    """One table: sizes as columns, stages as rows."""
    stages: list[str] = []
    for r in results:
        for s in r["stages"]:
            if s not in stages:
                stages.append(s)
    head = ["", *(f"{int(r['rows']):,} rows" for r in results)]
    rows: list[list[str]] = []
    rows.append(["Arrow size (MB)", *(f"{r['arrow_mb']:.0f}" for r in results)])
    rows.append(["read all columns (s)", *(f"{r['read_arrow_s']:.2f}" for r in results)])
    for s in stages:
        rows.append([f"  {s} (s)", *(f"{r['stages'].get(s, 0):.2f}" for r in results)])
    rows.append(["scan end to end (s)", *(f"{r['scan_s']:.2f}" for r in results)])
    rows.append(
        ["scan / read ratio", *(f"{r['scan_s'] / r['read_arrow_s']:.1f}x" for r in results)]
    )
    rows.append(["peak RSS (MB)", *(f"{r['peak_mb']:.0f}" for r in results)])
    rows.append(["findings", *(str(r["findings"]) for r in results)])
    rows.append(["rule errors", *(str(len(r["errors"])) for r in results)])
    if all("recall_total" in r for r in results):
        rows.append(["recall of injected cases", *(f"{r['recall_total']:.1%}" for r in results)])
        rows.append(["findings not injected", *(str(r["unexpected_findings"]) for r in results)])
    if all("near_misses" in r for r in results):
        rows.append(
            [
                "near-misses flagged",
                *(f"{r['false_alarms']} of {r['near_misses']}" for r in results),
            ]
        )
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    for line in [head, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)
            )
        )
    print_variants(results)
    if len(results) == 2:
        small, big = results
        ratio = float(big["scan_s"]) / float(small["scan_s"])
        print(
            f"\nscaling: {int(big['rows']) / int(small['rows']):.0f}x the rows took "
            f"{ratio:.1f}x the time (target: at most 12x)"
        )
    for r in results:
        if r.get("format") == "csv":
            ratio = float(r["scan_s"]) / float(r["read_arrow_s"])
            verdict = "meets" if ratio <= 3.0 else "MISSES"
            print(
                f"{int(r['rows']):,} rows of CSV: scan {float(r['scan_s']):.1f} s, "
                f"{ratio:.1f}x the pyarrow CSV read; {verdict} the 3x target"
            )
        target = TARGETS.get(int(r["rows"]))
        if target is not None and r.get("format") != "csv":
            verdict = "meets" if float(r["scan_s"]) < target else "MISSES"
            print(
                f"{int(r['rows']):,} rows: {float(r['scan_s']):.1f} s, "
                f"{verdict} the {target:.0f} s target"
            )
        if "recall" in r:
            print(f"  recall by root cause: {json.dumps(r['recall'], sort_keys=True)}")
        print(f"  findings by root cause: {json.dumps(r['by_root_cause'], sort_keys=True)}")


def print_variants(results: list[dict[str, Any]]) -> None:
    """Recall of each injected variant and false alarms of each near-miss, per size."""
    if not all("variants" in r for r in results):
        return
    keys: list[tuple[str, str, str]] = []
    for r in results:
        for v in r["variants"]:
            k = (v["root_cause"], v["expect"], v["variant"])
            if k not in keys:
                keys.append(k)
    keys.sort(key=lambda k: (k[0], k[1] != "finding", k[2]))
    head = ["root cause", "variant", *(f"{int(r['rows']):,} rows" for r in results)]
    rows: list[list[str]] = []
    for cause, expect, variant in keys:
        cells = []
        for r in results:
            got = {(v["root_cause"], v["expect"], v["variant"]): v for v in r["variants"]}
            v = got.get((cause, expect, variant))
            if v is None:
                cells.append("-")
            elif expect == "finding":
                cells.append(f"found {v['flagged']}/{v['n']}")
            else:
                cells.append(f"flagged {v['flagged']}/{v['n']}")
        kind = "case" if expect == "finding" else "near-miss"
        rows.append([cause, f"{kind}: {variant}", *cells])
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    print("\nrecall of injected cases and false alarms on near-misses, by variant")
    for line in [head, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(line)
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--input", type=Path, nargs="*", help="existing Parquet files instead")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tz", default="Asia/Shanghai")
    parser.add_argument("--csv", action="store_true", help="scan the 3GPP-style CSV export")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.tz), default=str))
        return 0
    paths = list(args.input) if args.input else [ensure_data(n, args.seed) for n in args.records]
    if args.csv:
        paths = [p if p.suffix == ".csv" else ensure_csv(p) for p in paths]
    results = [run_child(p, args.tz) for p in paths]
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
