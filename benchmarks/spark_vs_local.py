"""Benchmark: the Spark engine in local mode against the local scan, on one file.

    python benchmarks/spark_vs_local.py benchmarks/data/month-10000000.parquet \\
        [--master local[2]] [--tz Asia/Shanghai] [--driver-memory 6g]

Each engine runs in a fresh interpreter. The Spark figure is split into starting the
session, the scan (read, record ids, shuffle, the engine on every bucket, the input
accounting) and collecting the findings; it also reports the engine's own time per
bucket, the figure to size a cluster with. Both engines must give the same finding ids.
This is a script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure_local(path: str, tz: str) -> dict[str, Any]:
    import telediag

    t = time.perf_counter()
    result = telediag.scan(path, tz=tz)
    return {
        "scan_s": time.perf_counter() - t,
        "rows": result.report.rows_read,
        "findings": sorted(result.findings["finding_id"]),
        "evidence": len(result.evidence),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_spark(path: str, tz: str, master: str, driver_memory: str) -> dict[str, Any]:
    from telediag import spark as ts

    # The driver's memory must be set before its JVM starts.
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {driver_memory} pyspark-shell"
    t = time.perf_counter()
    spark = ts.session(master)
    start_s = time.perf_counter() - t
    t = time.perf_counter()
    result = ts.scan(ts.read(spark, path), tz=tz)
    scan_s = time.perf_counter() - t
    t = time.perf_counter()
    local = result.to_local()
    collect_s = time.perf_counter() - t
    return {
        "start_s": start_s,
        "scan_s": scan_s,
        "collect_s": collect_s,
        "rows": result.report.rows_read,
        "buckets": result.buckets,
        "bucket_seconds": result.bucket_seconds,
        "findings": sorted(local.findings["finding_id"]),
        "evidence": len(local.evidence),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    if args.child == "local":
        return measure_local(args.path, args.tz)
    return measure_spark(args.path, args.tz, args.master, args.driver_memory)


def run(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, args.path, "--child", engine, "--tz", args.tz]
    cmd += ["--master", args.master, "--driver-memory", args.driver_memory]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # telediag from this checkout
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--tz", default="Asia/Shanghai")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--child", choices=["local", "spark"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args), default=str))
        return 0
    local = run("local", args)
    spark = run("spark", args)
    same = local["findings"] == spark["findings"] and local["evidence"] == spark["evidence"]
    spark_total = spark["scan_s"] + spark["collect_s"]
    print(f"rows: {local['rows']:,}; findings: {len(local['findings'])} (identical: {same})")
    print(f"local scan: {local['scan_s']:.1f} s, peak {local['peak_mb'] / 1024:.1f} GB")
    print(
        f"spark {args.master}: session {spark['start_s']:.1f} s, scan {spark['scan_s']:.1f} s, "
        f"collect findings {spark['collect_s']:.1f} s; ratio to local "
        f"{spark_total / local['scan_s']:.1f}x (without the session start)"
    )
    for which, (n, seconds) in spark["bucket_seconds"].items():
        rows = local["rows"] / max(1, n) if which == "subscriber" else None
        per = f", ~{rows:,.0f} rows each" if rows else ""
        each = seconds / max(1, n)
        print(f"  {which} buckets: {n}, engine time {seconds:.1f} s ({each:.2f} s each{per})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
