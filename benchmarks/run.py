"""Benchmark: telediag against hand-written DuckDB SQL, in the same run, on the same file.

    python benchmarks/run.py                              # 1M and 10M records, every mode
    python benchmarks/run.py --records 1000000            # one size
    python benchmarks/run.py --input month/ --modes buckets store --memory 3GB
    python benchmarks/run.py --csv --records 10000000    # the month as a 3GPP-style CSV

Modes, each in a fresh process so that its wall time (process start to exit, imports
included) and peak memory (max RSS, from wait4) are its own:

- ``duckdb``: ``benchmarks/duckdb_baseline.py`` (load the file into DuckDB, ten queries);
- ``memory``: ``telediag.scan`` with the whole month in memory;
- ``buckets``: the same scan out of core under ``--memory`` (spilled buckets);
- ``store``: ``telediag prepare``, then a scan of the store, then ``telediag
  investigate STORE --msisdn N`` for one subscriber with an injected case (and the same
  investigation read from the input file, for comparison).

With ``--csv`` each month is also exported (once) as a mediation system would write it
(3GPP TS 32.298-style names, local compact times such as ``20080701000008``; see
``generate.write_3gpp_csv``) and scanned through ``column-maps/3gpp-ts32298.yaml``; the
DuckDB baseline (Parquet only) is skipped and the in-memory scan is compared with
``pyarrow.csv.read_csv`` of the same file (target: at most 3x).

The findings of every telediag mode are compared, and must be identical. Data are
generated once by ``benchmarks/generate.py`` (seeded) and cached under
``benchmarks/data/``; ``benchmarks/replicate.py`` makes a 100M-record month from the
10M one. This is a script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
MODES = ("duckdb", "memory", "buckets", "store")
COLUMN_MAP_3GPP = ROOT / "column-maps" / "3gpp-ts32298.yaml"


def ensure_csv(parquet: Path) -> Path:
    """The 3GPP-style CSV export of a generated month (written once, beside it)."""
    path = parquet.with_name(parquet.stem + "-3gpp.csv")
    if not path.exists():
        import pyarrow.parquet as pq

        sys.path.insert(0, str(HERE))
        from generate import write_3gpp_csv

        write_3gpp_csv(pq.read_table(parquet), path)
    return path


def truth_file(path: Path) -> Path:
    """The generator's truth file of a month (or of the month a CSV was exported from)."""
    return path.with_name(path.name.replace("-3gpp.csv", ".parquet") + ".truth.csv")


def is_csv(path: Path) -> bool:
    return path.suffix == ".csv"


def ensure_data(records: int, seed: int) -> Path:
    """Generate (once) the synthetic month of ``records`` rows."""
    path = DATA / f"month-{records}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--records", str(records)]
            + ["--out", str(path), "--seed", str(seed)],
            check=True,
            env=_env(),
        )
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; (wall seconds, peak RSS in MB, stdout). Fails loudly on an error."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN only cumulatively,
    # so each child reports its own peak too (see --child); take the larger.
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    peak = 0.0
    for line in err.splitlines():
        if line.startswith("PEAK_RSS_MB "):
            peak = float(line.split()[1])
    return wall, peak, out


def _peak_wrapper(cmd: list[str]) -> list[str]:
    """Run ``cmd`` under a tiny wrapper that reports the child's own peak RSS."""
    code = (
        "import os, resource, subprocess, sys;"
        "p = subprocess.run(sys.argv[1:]);"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024;"
        "print(f'PEAK_RSS_MB {r:.0f}', file=sys.stderr); sys.exit(p.returncode)"
    )
    return [sys.executable, "-c", code, *cmd]


def child(path: Path, mode: str, tz: str, memory: str | None, out: Path) -> dict[str, Any]:
    """In the child: one scan, its findings written to ``out``, figures as JSON."""
    import resource

    import telediag

    read_csv_s = None
    if mode == "memory" and is_csv(path):
        import pyarrow.csv as pacsv

        t = time.perf_counter()
        pacsv.read_csv(path)
        read_csv_s = time.perf_counter() - t
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"tz": tz} if mode != "store" else {}
    if mode != "store" and is_csv(path):
        kwargs["column_map"] = COLUMN_MAP_3GPP
    if mode == "buckets":
        from telediag.engine import default_workers
        from telediag.outofcore import estimate_rows, parse_size, plan_buckets
        from telediag.read import expand_sources

        budget = parse_size(memory or "2GB")
        rows = estimate_rows(expand_sources(path))
        kwargs["memory"] = budget
        kwargs["buckets"] = plan_buckets(rows, budget, default_workers())
    result = telediag.scan(path, **kwargs)
    if mode == "buckets" and "partition" not in result.timings:
        raise SystemExit("the budget let the month fit in memory: give a smaller --memory")
    seconds = time.perf_counter() - started
    result.findings.to_parquet(out)
    result.evidence.to_parquet(out.with_suffix(".evidence.parquet"))
    return {
        "scan_s": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stages": {k: v for k, v in result.timings.items() if not k.startswith("rule ")},
        "rules": {k[5:]: v for k, v in result.timings.items() if k.startswith("rule ")},
        "findings": len(result.findings),
        "rows": result.report.rows_read,
        "errors": [str(e) for e in result.errors],
        **({"read_csv_s": read_csv_s} if read_csv_s is not None else {}),
    }


def recall(path: Path, findings: Path) -> dict[str, Any]:
    """Injected cases found and near-misses flagged, from the generator's truth file."""
    import pandas as pd

    truth = truth_file(path)
    if not truth.exists():
        return {}
    rows = pd.read_csv(truth, dtype=str)
    if "expect" not in rows:  # a truth file from before near-misses were listed
        rows = rows.assign(expect="finding", variant="documented")
    result = pd.read_parquet(findings, columns=["root_cause", "msisdn"])
    found = set(zip(result["root_cause"], result["msisdn"], strict=True))
    rows = rows.assign(
        flagged=[(c, m) in found for c, m in zip(rows["root_cause"], rows["msisdn"], strict=True)]
    )
    expected = rows[rows["expect"] == "finding"]
    near = rows[rows["expect"] == "none"]
    pairs = set(zip(expected["root_cause"], expected["msisdn"], strict=True))
    return {
        "recall_total": float(expected["flagged"].mean()) if len(expected) else float("nan"),
        "unexpected_findings": sum(1 for f in found if f not in pairs),
        "false_alarms": int(near["flagged"].sum()),
        "near_misses": len(near),
        "variants": [
            {
                "root_cause": rc,
                "expect": ex,
                "variant": v,
                "n": int(g.size),
                "flagged": int(g.sum()),
            }
            for (rc, ex, v), g in rows.groupby(["root_cause", "expect", "variant"])["flagged"]
        ],
    }


def one_subscriber(path: Path) -> str | None:
    """A subscriber with an injected SIM-swap case (the investigation follows handsets)."""
    import pandas as pd

    truth = truth_file(path)
    if not truth.exists():
        return None
    frame = pd.read_csv(truth, dtype=str)
    swap = frame[frame["root_cause"] == "mms_outbox_resend_after_sim_swap"]
    return str((swap if len(swap) else frame)["msisdn"].iloc[0])


def measure(path: Path, modes: list[str], tz: str, memory: str | None) -> dict[str, Any]:
    """Every mode on one input; figures by mode."""
    work = Path(tempfile.mkdtemp(prefix="telediag-bench-"))
    out: dict[str, Any] = {"input": str(path)}
    try:
        py = sys.executable
        if "duckdb" in modes and not is_csv(path):
            wall, peak, text = timed(
                _peak_wrapper([py, str(HERE / "duckdb_baseline.py"), str(path), "--json"])
            )
            figures = json.loads(text)
            out["duckdb"] = {"wall_s": wall, "peak_mb": peak, **_pick(figures)}
        for mode in ("memory", "buckets"):
            if mode not in modes:
                continue
            found = work / f"{mode}.parquet"
            cmd = [py, str(Path(__file__).resolve()), "--child", str(path), "--mode", mode]
            cmd += ["--tz", tz, "--findings", str(found)] + (["--memory", memory] if memory else [])
            wall, peak, text = timed(_peak_wrapper(cmd))
            out[mode] = {"wall_s": wall, "peak_mb": peak, **json.loads(text.splitlines()[-1])}
        if "store" in modes:
            store = work / "store"
            cmd = [py, "-m", "telediag", "prepare", str(path), "--out", str(store), "--tz", tz]
            cmd += ["-q", "--no-progress"] + (["--memory", memory] if memory else [])
            cmd += ["--column-map", str(COLUMN_MAP_3GPP)] if is_csv(path) else []
            wall, peak, _ = timed(_peak_wrapper(cmd))
            out["prepare"] = {"wall_s": wall, "peak_mb": peak}
            found = work / "store.parquet"
            cmd = [py, str(Path(__file__).resolve()), "--child", str(store), "--mode", "store"]
            cmd += ["--tz", tz, "--findings", str(found)]
            wall, peak, text = timed(_peak_wrapper(cmd))
            out["store"] = {"wall_s": wall, "peak_mb": peak, **json.loads(text.splitlines()[-1])}
            msisdn = one_subscriber(path)
            if msisdn is not None:
                for name, source in (("investigate store", store), ("investigate file", path)):
                    if name == "investigate file" and "memory" not in modes:
                        continue
                    cmd = [py, "-m", "telediag", "investigate", str(source), "--msisdn", msisdn]
                    cmd += ["--tz", tz, "--format", "json", "--out", str(work / "inv.json")]
                    if name == "investigate file" and is_csv(path):
                        cmd += ["--column-map", str(COLUMN_MAP_3GPP)]
                    wall, peak, _ = timed(_peak_wrapper(cmd))
                    report = json.loads((work / "inv.json").read_text())
                    out[name] = {
                        "wall_s": wall,
                        "peak_mb": peak,
                        "msisdn": msisdn,
                        "findings": len(report.get("findings", [])),
                    }
        done = [m for m in ("memory", "buckets", "store") if m in modes]
        out["identical"] = _compare(work, done)
        if done:
            out["truth"] = recall(path, work / f"{done[0]}.parquet")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _pick(figures: dict[str, Any]) -> dict[str, Any]:
    keep = ("load_s", "query_s", "total_s", "findings", "recall_total")
    return {k: figures[k] for k in keep if k in figures}


def _compare(work: Path, modes: list[str]) -> str:
    """Are the findings and evidence of every telediag mode the same?"""
    import pandas as pd

    if len(modes) < 2:
        return "n/a"
    first = modes[0]
    a = pd.read_parquet(work / f"{first}.parquet")
    ea = pd.read_parquet(work / f"{first}.evidence.parquet")
    for mode in modes[1:]:
        b = pd.read_parquet(work / f"{mode}.parquet")
        eb = pd.read_parquet(work / f"{mode}.evidence.parquet")
        try:
            pd.testing.assert_frame_equal(a, b)
            pd.testing.assert_frame_equal(ea, eb)
        except AssertionError as exc:
            return f"NO: {first} and {mode} differ: {str(exc).splitlines()[0]}"
    return "yes (" + ", ".join(modes) + ")"


def print_table(results: list[dict[str, Any]]) -> None:
    """One block per input: modes as columns, figures and stages as rows."""
    for r in results:
        rows_read = next((r[m]["rows"] for m in ("memory", "buckets", "store") if m in r), 0)
        print(f"\n{r['input']}: {rows_read:,} records")
        cols = [m for m in ("duckdb", "memory", "buckets", "prepare", "store") if m in r]
        cols += [m for m in ("investigate store", "investigate file") if m in r]
        head = ["", *cols]
        lines = [
            ["wall, process (s)", *(f"{r[c]['wall_s']:.2f}" for c in cols)],
            ["peak RSS (MB)", *(f"{r[c]['peak_mb']:.0f}" for c in cols)],
        ]
        if "duckdb" in r:
            base = r["duckdb"]
            lines.append(
                ["wall / DuckDB", *(f"{r[c]['wall_s'] / base['wall_s']:.2f}x" for c in cols)]
            )
            lines.append(
                ["RSS / DuckDB", *(f"{r[c]['peak_mb'] / base['peak_mb']:.2f}x" for c in cols)]
            )
        lines.append(["findings", *(str(r[c].get("findings", "")) for c in cols)])
        stages: list[str] = []
        for c in cols:
            stages += [s for s in r[c].get("stages", {}) if s not in stages]
        for s in stages:
            lines.append([f"  {s} (s)", *(_stage(r[c], s) for c in cols)])
        if "duckdb" in r:
            for k in ("load_s", "query_s"):
                lines.append([f"  duckdb {k[:-2]} (s)", *(_stage(r[c], k, top=True) for c in cols)])
        widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
        for line in [head, ["-" * w for w in widths], *lines]:
            print(
                "  ".join(
                    c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)
                )
            )
        print(f"findings identical across telediag modes: {r['identical']}")
        if r.get("memory", {}).get("read_csv_s"):
            ratio = r["memory"]["scan_s"] / r["memory"]["read_csv_s"]
            verdict = "meets" if ratio <= 3.0 else "MISSES"
            print(f"CSV: scan {ratio:.1f}x the pyarrow CSV read; {verdict} the 3x target")
        truth = r.get("truth") or {}
        if truth:
            print(
                f"recall of injected cases {truth['recall_total']:.1%}; findings not injected "
                f"{truth['unexpected_findings']}; near-misses flagged "
                f"{truth['false_alarms']} of {truth['near_misses']}"
            )
        for c in ("memory", "buckets", "store"):
            if c in r and r[c].get("rules"):
                slow = sorted(r[c]["rules"].items(), key=lambda kv: -kv[1])[:5]
                print(f"  slowest rules ({c}): " + ", ".join(f"{k} {v:.2f}s" for k, v in slow))


def print_variants(results: list[dict[str, Any]]) -> None:
    """Recall of each injected variant and false alarms of each near-miss, per input."""
    found = [r for r in results if (r.get("truth") or {}).get("variants")]
    if not found:
        return
    keys: list[tuple[str, str, str]] = []
    for r in found:
        for v in r["truth"]["variants"]:
            k = (v["root_cause"], v["expect"], v["variant"])
            if k not in keys:
                keys.append(k)
    keys.sort(key=lambda k: (k[0], k[1] != "finding", k[2]))
    head = ["root cause", "variant", *(Path(r["input"]).name for r in found)]
    rows: list[list[str]] = []
    for cause, expect, variant in keys:
        cells = []
        for r in found:
            got = {(v["root_cause"], v["expect"], v["variant"]): v for v in r["truth"]["variants"]}
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


def _stage(figures: dict[str, Any], name: str, top: bool = False) -> str:
    value = figures.get(name) if top else figures.get("stages", {}).get(name)
    return "" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--input", type=Path, nargs="*", help="existing Parquet file or folder")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument("--memory", help="budget of the bucketed modes, e.g. 2GB")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tz", default="Asia/Shanghai")
    parser.add_argument("--json", action="store_true", help="also print the raw figures")
    parser.add_argument("--csv", action="store_true", help="scan the 3GPP-style CSV export")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--findings", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mode, args.tz, args.memory, args.findings)))
        return 0
    paths = list(args.input) if args.input else [ensure_data(n, args.seed) for n in args.records]
    if args.csv:
        paths = [p if is_csv(p) else ensure_csv(p) for p in paths]
    results = []
    for p in paths:
        memory = args.memory
        if memory is None and "buckets" in args.modes:
            memory = "2GB"
        results.append(measure(p, list(args.modes), args.tz, memory))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    print_table(results)
    print_variants(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
