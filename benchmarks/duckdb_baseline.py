"""Baseline: the ten root causes as hand-written DuckDB SQL, timed over one Parquet month.

    python benchmarks/duckdb_baseline.py benchmarks/data/month-10m.parquet
    python benchmarks/duckdb_baseline.py DATA --threads 2 --direct --json

This is the speed to beat: the same questions telediag's rules ask, with comparable
thresholds, written as window functions and aggregates over the contract's table. The
file (or directory of Parquet files) is loaded into an in-memory DuckDB table first
("load"); then the ten queries run ("queries"). ``--direct`` skips the load and queries
the Parquet files in place. Peak memory is the process's max RSS, DuckDB included.

Where ``<input>.truth.csv`` exists (written by ``benchmarks/generate.py``) the recall of
the injected cases is reported per root cause, and how many (root cause, msisdn) pairs
were found that were not injected.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Final

import duckdb
import pandas as pd
import psutil

ROOT: Final = Path(__file__).resolve().parents[1]
DEVICES_CSV: Final = ROOT / "telediag" / "data" / "devices.csv"
NETWORKS_CSV: Final = ROOT / "telediag" / "data" / "networks.csv"

# Each query returns: root_cause, msisdn, first_seen, last_seen, records, charge.
# Thresholds follow the rules in rules/TD*.yaml where they exist.

INTERNATIONAL = """(
    (peer_number LIKE '+%' AND peer_number NOT LIKE '+86%')
    OR (peer_number LIKE '00%' AND peer_number NOT LIKE '0086%')
)"""

QUERIES: Final[dict[str, str]] = {
    # Case 1: a burst of MO SMS to one recipient, one length, short gaps.
    "anti_theft_sms_forwarding": """
WITH s AS (
    SELECT msisdn, peer_number, start_time, sms_length, charge,
           epoch(start_time) - lag(epoch(start_time)) OVER w AS gap
    FROM cdr
    WHERE record_type = 'sms' AND direction = 'mo' AND peer_number IS NOT NULL
    WINDOW w AS (PARTITION BY msisdn, peer_number ORDER BY start_time)
), b AS (
    SELECT *, sum(CASE WHEN gap IS NULL OR gap > 1800 THEN 1 ELSE 0 END) OVER (
        PARTITION BY msisdn, peer_number ORDER BY start_time ROWS UNBOUNDED PRECEDING
    ) AS burst
    FROM s
), big AS (
    SELECT msisdn, peer_number, burst
    FROM b GROUP BY ALL HAVING count(*) >= 30
), rows AS (
    SELECT b.* FROM b JOIN big USING (msisdn, peer_number, burst)
), lens AS (
    SELECT msisdn, peer_number, burst, sms_length, count(*) AS c FROM rows GROUP BY ALL
), top AS (
    SELECT msisdn, peer_number, burst, max(c) AS top FROM lens GROUP BY ALL
), g AS (
    SELECT msisdn, peer_number, burst, count(*) AS n,
           median(gap) FILTER (WHERE gap <= 1800) AS med_gap,
           min(start_time) AS first_seen, max(start_time) AS last_seen,
           coalesce(sum(charge), 0) AS charge
    FROM rows GROUP BY ALL
)
SELECT 'anti_theft_sms_forwarding' AS root_cause, msisdn, first_seen, last_seen,
       n AS records, charge
FROM g JOIN top USING (msisdn, peer_number, burst)
WHERE med_gap <= 300 AND top >= 0.8 * n
""",
    # Case 2: a failed MMS submit under A; later, under the next SIM in the same handset,
    # one of that SIM's first three submits there, within a day of its first record on
    # the handset (its arrival), goes to the same recipient with the same size, at most
    # 62 days after the failure. Stints: runs of one subscriber's records on a handset.
    "mms_outbox_resend_after_sim_swap": """
WITH hs AS (  -- handsets worth following: a failed submit, submits of two subscribers
    SELECT imei FROM cdr
    WHERE record_type = 'mms' AND direction = 'mo' AND mms_event = 'submit'
      AND imei IS NOT NULL
    GROUP BY imei
    HAVING count_if(coalesce(status, 'ok') <> 'ok') >= 1 AND count(DISTINCT msisdn) >= 2
), h AS (
    SELECT msisdn, imei, start_time, record_type, direction, mms_event, peer_number,
           mms_size, status, charge,
           CASE WHEN lag(msisdn) OVER w IS DISTINCT FROM msisdn THEN 1 ELSE 0 END AS new_stint
    FROM cdr
    WHERE imei IN (SELECT imei FROM hs)
    WINDOW w AS (PARTITION BY imei ORDER BY start_time, msisdn)
), st AS (
    SELECT *, sum(new_stint) OVER (PARTITION BY imei ORDER BY start_time, msisdn
                                   ROWS UNBOUNDED PRECEDING) AS stint
    FROM h
), arr AS (
    SELECT *, min(start_time) OVER (PARTITION BY imei, stint) AS arrival FROM st
), sub AS (
    SELECT *, row_number() OVER (PARTITION BY imei, stint ORDER BY start_time) AS place,
           lag(status) OVER k AS prev_status, lag(msisdn) OVER k AS prev_msisdn,
           lag(start_time) OVER k AS prev_time
    FROM arr
    WHERE record_type = 'mms' AND direction = 'mo' AND mms_event = 'submit'
    WINDOW k AS (PARTITION BY imei, peer_number, mms_size ORDER BY start_time)
)
SELECT 'mms_outbox_resend_after_sim_swap' AS root_cause, msisdn,
       min(prev_time) AS first_seen, max(start_time) AS last_seen,
       count(*) + 1 AS records, coalesce(sum(charge), 0) AS charge
FROM sub
WHERE coalesce(status, 'ok') = 'ok' AND stint > 1
  AND prev_msisdn IS NOT NULL AND coalesce(prev_status, 'ok') <> 'ok'
  AND prev_msisdn <> msisdn AND prev_time < arrival
  AND place <= 3 AND start_time <= arrival + INTERVAL 1 DAY
  AND start_time <= prev_time + INTERVAL 62 DAY
GROUP BY msisdn
""",
    # Case 3: many failed attempts on one MMS id; or one MMS submitted again and again.
    "mms_retry_loop": """
WITH fetches AS (
    SELECT msisdn, min(start_time) AS first_seen, max(start_time) AS last_seen,
           count(*) AS n, count_if(status = 'failed') AS nf,
           coalesce(sum(charge), 0) AS charge
    FROM cdr
    WHERE record_type IN ('data', 'mms') AND mms_message_id IS NOT NULL
    GROUP BY msisdn, mms_message_id
    HAVING nf >= 20 AND nf >= 0.8 * n
), s AS (
    SELECT msisdn, peer_number, mms_size, start_time, charge,
           epoch(start_time) - lag(epoch(start_time)) OVER w AS gap
    FROM cdr
    WHERE record_type = 'mms' AND direction = 'mo' AND mms_event = 'submit'
      AND peer_number IS NOT NULL AND mms_size IS NOT NULL
    WINDOW w AS (PARTITION BY msisdn, peer_number, mms_size ORDER BY start_time)
), sb AS (
    SELECT *, sum(CASE WHEN gap IS NULL OR gap > 10800 THEN 1 ELSE 0 END) OVER (
        PARTITION BY msisdn, peer_number, mms_size ORDER BY start_time
        ROWS UNBOUNDED PRECEDING) AS burst
    FROM s
), resend AS (
    SELECT msisdn, min(start_time) AS first_seen, max(start_time) AS last_seen,
           count(*) AS n, coalesce(sum(charge), 0) AS charge
    FROM sb GROUP BY msisdn, peer_number, mms_size, burst HAVING count(*) >= 5
)
SELECT 'mms_retry_loop' AS root_cause, msisdn, first_seen, last_seen, n AS records, charge
FROM fetches
UNION ALL
SELECT 'mms_retry_loop', msisdn, first_seen, last_seen, n, charge FROM resend
""",
    # Case 5: circuit-switched data calls to an international number.
    "international_dialup_trap": f"""
SELECT 'international_dialup_trap' AS root_cause, msisdn, min(start_time) AS first_seen,
       max(start_time) AS last_seen, count(*) AS records, coalesce(sum(charge), 0) AS charge
FROM cdr
WHERE record_type = 'csd' AND direction = 'mo' AND {INTERNATIONAL}
GROUP BY msisdn, peer_number
""",
    # Case 6: from its first rejection on, MMS from one sender rejected (nearly) every
    # time, while (nearly) every other sender in that period got its MMS through.
    "mms_sender_blocklisted": """
WITH d AS (
    SELECT msisdn, peer_number, status, start_time, charge
    FROM cdr
    WHERE record_type = 'mms' AND direction = 'mt' AND mms_event = 'deliver'
), per AS (
    SELECT msisdn, peer_number, count(*) AS n, count_if(status = 'rejected') AS nr,
           min(start_time) FILTER (WHERE status = 'rejected') AS first_rej,
           min(start_time) AS first_seen, max(start_time) AS last_seen,
           coalesce(sum(charge), 0) AS charge
    FROM d WHERE peer_number IS NOT NULL GROUP BY ALL
    HAVING count_if(status = 'rejected') >= 2
), since AS (
    SELECT per.msisdn, per.peer_number, count(*) AS n_since
    FROM per JOIN d ON d.msisdn = per.msisdn AND d.peer_number = per.peer_number
     AND d.start_time >= per.first_rej
    GROUP BY ALL
), by_sender AS (  -- other senders in the period, each mostly refused or not
    SELECT per.msisdn, per.peer_number, d.peer_number AS other,
           2 * count_if(coalesce(d.status, 'ok') <> 'ok') > count(*) AS refused
    FROM per JOIN d ON d.msisdn = per.msisdn
     AND d.peer_number IS DISTINCT FROM per.peer_number
     AND d.start_time BETWEEN per.first_rej AND per.last_seen
    GROUP BY ALL
), others AS (
    SELECT msisdn, peer_number, count(*) AS senders, count_if(refused) AS refused_senders
    FROM by_sender GROUP BY ALL
)
SELECT 'mms_sender_blocklisted' AS root_cause, msisdn, first_seen, last_seen,
       n AS records, charge
FROM per JOIN since USING (msisdn, peer_number) JOIN others USING (msisdn, peer_number)
WHERE nr >= 0.8 * n_since AND senders >= 1 AND refused_senders <= 0.2 * senders
""",
    # Case 7: MMS or WAP traffic on the WTLS ports.
    "mms_encrypted_port": """
SELECT 'mms_encrypted_port' AS root_cause, msisdn, min(start_time) AS first_seen,
       max(start_time) AS last_seen, count(*) AS records, coalesce(sum(charge), 0) AS charge
FROM cdr
WHERE record_type IN ('mms', 'data') AND server_port IN (9202, 9203)
  AND (record_type = 'mms' OR mms_message_id IS NOT NULL OR apn LIKE 'cmwap%'
       OR app_protocol LIKE 'MMS%' OR app_protocol LIKE 'WAP%' OR app_protocol LIKE 'WTLS%')
GROUP BY msisdn
""",
    # Case 8: failures while roaming in a network whose bands the handset lacks.
    "roaming_band_unsupported": """
WITH r AS (
    SELECT c.msisdn, c.visited_mcc, c.status, c.start_time, c.charge,
           d.bands AS handset_bands, n.gsm_bands AS network_bands
    FROM cdr c
    JOIN devices d ON substr(c.imei, 1, 8) = d.tac
    JOIN networks n ON c.visited_mcc BETWEEN n.mcc_from AND n.mcc_to
    WHERE c.visited_mcc IS NOT NULL AND c.visited_mcc <> 460 AND c.imei IS NOT NULL
)
SELECT 'roaming_band_unsupported' AS root_cause, msisdn, min(start_time) AS first_seen,
       max(start_time) AS last_seen, count(*) AS records, coalesce(sum(charge), 0) AS charge
FROM r
WHERE NOT list_has_any(string_split(handset_bands, '/'),
                       string_split(coalesce(network_bands, ''), '/'))
GROUP BY msisdn, visited_mcc
HAVING count_if(status = 'failed') >= 1
""",
    # Case 9: MO SMS to one foreign number in a daily rhythm (most days of the span,
    # three days in a row at least), nearly all of one length.
    "handset_auto_international_sms": f"""
WITH s AS (
    SELECT msisdn, peer_number, start_time, charge, sms_length,
           datediff('day', DATE '1970-01-01',
                    CAST(timezone('Asia/Shanghai', start_time) AS DATE)) AS dn
    FROM cdr
    WHERE record_type = 'sms' AND direction = 'mo' AND {INTERNATIONAL}
), g AS (
    SELECT msisdn, peer_number, count(*) AS n, count(DISTINCT dn) AS days,
           max(dn) - min(dn) + 1 AS span_days, min(start_time) AS first_seen,
           max(start_time) AS last_seen, coalesce(sum(charge), 0) AS charge
    FROM s GROUP BY ALL
), lens AS (
    SELECT msisdn, peer_number, max(c) AS top
    FROM (SELECT msisdn, peer_number, sms_length, count(*) AS c FROM s GROUP BY ALL)
    GROUP BY ALL
), days AS (
    SELECT DISTINCT msisdn, peer_number, dn FROM s
), runs AS (
    SELECT msisdn, peer_number, max(len) AS longest
    FROM (SELECT msisdn, peer_number, count(*) AS len
          FROM (SELECT *, dn - row_number() OVER (PARTITION BY msisdn, peer_number
                                                  ORDER BY dn) AS island FROM days)
          GROUP BY msisdn, peer_number, island)
    GROUP BY ALL
)
SELECT 'handset_auto_international_sms' AS root_cause, msisdn, first_seen, last_seen,
       n AS records, charge
FROM g JOIN lens USING (msisdn, peer_number) JOIN runs USING (msisdn, peer_number)
WHERE n >= 5 AND days >= 5 AND days >= 0.6 * span_days AND longest >= 3 AND top >= 0.8 * n
""",
    # Case 10: MO SMS sent as class 0 (flash).
    "flash_sms": """
SELECT 'flash_sms' AS root_cause, msisdn, min(start_time) AS first_seen,
       max(start_time) AS last_seen, count(*) AS records, coalesce(sum(charge), 0) AS charge
FROM cdr
WHERE record_type = 'sms' AND direction = 'mo' AND sms_class = 0
GROUP BY msisdn
""",
    # Case 11: mail sessions to one server on a timer, with near-constant volume.
    "mail_polling": """
WITH m AS (
    SELECT msisdn, server_ip, start_time, charge,
           coalesce(bytes_up, 0) + coalesce(bytes_down, 0) AS vol,
           epoch(start_time) - lag(epoch(start_time)) OVER (
               PARTITION BY msisdn, server_ip ORDER BY start_time) AS gap
    FROM cdr
    WHERE record_type = 'data' AND server_ip IS NOT NULL AND (
        app_protocol LIKE 'POP%' OR app_protocol LIKE 'IMAP%'
        OR (app_protocol IS NULL AND server_port IN (110, 995, 143, 993)))
), g AS (
    SELECT msisdn, server_ip, count(*) AS n, median(gap) AS period, median(vol) AS vmed
    FROM m GROUP BY ALL HAVING count(*) >= 24
), s AS (
    SELECT m.msisdn, m.server_ip, g.n, g.period,
           count_if(gap IS NOT NULL AND round(gap / g.period) BETWEEN 1 AND 3
                    AND abs(gap / g.period - round(gap / g.period)) <= 0.2) AS regular,
           count_if(abs(vol - g.vmed) <= 0.25 * g.vmed) AS steady,
           min(start_time) AS first_seen, max(start_time) AS last_seen,
           coalesce(sum(charge), 0) AS charge
    FROM m JOIN g USING (msisdn, server_ip)
    GROUP BY ALL
)
SELECT 'mail_polling' AS root_cause, msisdn, first_seen, last_seen, n AS records, charge
FROM s
WHERE period BETWEEN 120 AND 3600 AND regular >= 0.7 * (n - 1) AND steady >= 0.7 * n
""",
}


def read_catalog(path: Path) -> pd.DataFrame:
    """A CSV shipped with telediag, without its comment lines."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    return pd.DataFrame(rows)


def source_sql(path: Path) -> str:
    """read_parquet() over a file or a directory of Parquet files."""
    pattern = str(path / "*.parquet") if path.is_dir() else str(path)
    return f"read_parquet('{pattern}')"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(path: Path, threads: int | None, direct: bool) -> dict[str, Any]:
    """Load (unless ``direct``) and run every query; return timings and findings."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    devices = read_catalog(DEVICES_CSV)[["tac", "bands"]]
    networks = read_catalog(NETWORKS_CSV)
    networks["mcc_from"] = networks["mcc_from"].astype(int)
    networks["mcc_to"] = networks["mcc_to"].astype(int)
    con.register("devices_df", devices)
    con.register("networks_df", networks)
    con.execute("CREATE TABLE devices AS SELECT * FROM devices_df")
    con.execute("CREATE TABLE networks AS SELECT * FROM networks_df")

    t0 = time.perf_counter()
    if direct:
        con.execute(f"CREATE VIEW cdr AS SELECT * FROM {source_sql(path)}")
    else:
        con.execute(f"CREATE TABLE cdr AS SELECT * FROM {source_sql(path)}")
    load_s = time.perf_counter() - t0
    n_rows = int(con.sql("SELECT count(*) FROM cdr").fetchall()[0][0])

    per_query: dict[str, float] = {}
    frames: list[pd.DataFrame] = []
    t1 = time.perf_counter()
    for name, sql in QUERIES.items():
        tq = time.perf_counter()
        frames.append(con.sql(sql).to_arrow_table().to_pandas())
        per_query[name] = time.perf_counter() - tq
    query_s = time.perf_counter() - t1
    findings = pd.concat(frames, ignore_index=True)
    rss_now = psutil.Process().memory_info().rss / 2**20
    con.close()
    return {
        "input": str(path),
        "rows": n_rows,
        "threads": threads,
        "direct": direct,
        "load_s": load_s,
        "query_s": query_s,
        "total_s": load_s + query_s,
        "per_query_s": per_query,
        "peak_rss_mb": peak_rss_mb(),
        "rss_end_mb": rss_now,
        "findings": findings,
    }


def truth_file(path: Path) -> Path | None:
    """The generator's ground truth beside the input, if any."""
    candidate = path.with_name(path.name + ".truth.csv")
    return candidate if candidate.exists() else None


def score(findings: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """Recall of injected (root cause, msisdn) pairs; found pairs that were not injected.

    Near-miss rows of the truth (``expect`` none) are not cases: they count only as
    found pairs that were not injected when a query flags them.
    """
    if "expect" in truth:
        truth = truth[truth["expect"] == "finding"].reset_index(drop=True)
    found = set(zip(findings["root_cause"], findings["msisdn"], strict=True))
    expected = list(zip(truth["root_cause"], truth["msisdn"], strict=True))
    hits = pd.Series([pair in found for pair in expected], dtype=bool)
    by_cause = hits.groupby(truth["root_cause"].to_numpy()).mean().to_dict()
    injected = set(expected)
    extra = sorted(p for p in found if p not in injected)
    extra_by_cause: dict[str, int] = {}
    for cause, _ in extra:
        extra_by_cause[cause] = extra_by_cause.get(cause, 0) + 1
    return {
        "recall": float(hits.mean()) if len(hits) else float("nan"),
        "recall_by_cause": {k: float(v) for k, v in sorted(by_cause.items())},
        "unexpected": len(extra),
        "unexpected_by_cause": dict(sorted(extra_by_cause.items())),
    }


def report(result: dict[str, Any], scores: dict[str, Any] | None) -> None:
    findings: pd.DataFrame = result["findings"]
    print(f"input            {result['input']} ({result['rows']:,} rows)")
    mode = "query Parquet in place" if result["direct"] else "CREATE TABLE from Parquet"
    print(f"load             {result['load_s']:.2f} s  ({mode})")
    print(f"queries          {result['query_s']:.2f} s")
    print(f"total            {result['total_s']:.2f} s")
    print(f"peak RSS         {result['peak_rss_mb']:.0f} MB")
    pairs = findings.groupby("root_cause")["msisdn"].nunique()
    width = max(len(k) for k in QUERIES)
    print(f"\n{'root cause':<{width}}  query s  subscribers" + ("  recall" if scores else ""))
    for name in QUERIES:
        line = f"{name:<{width}}  {result['per_query_s'][name]:7.2f}  {int(pairs.get(name, 0)):11d}"
        if scores:
            rec = scores["recall_by_cause"].get(name)
            line += f"  {rec:6.1%}" if rec is not None else "       -"
        print(line)
    if scores:
        print(f"\nrecall of injected cases: {scores['recall']:.1%}")
        print(
            f"found but not injected:   {scores['unexpected']} "
            f"{json.dumps(scores['unexpected_by_cause'])}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="Parquet file or directory of Parquet files")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    parser.add_argument("--direct", action="store_true", help="query the Parquet in place")
    parser.add_argument("--truth", type=Path, default=None, help="ground truth CSV")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.input.exists():
        print(f"duckdb_baseline: no such input: {args.input}", file=sys.stderr)
        return 2
    result = run(args.input, args.threads, args.direct)
    truth_path = args.truth or truth_file(args.input)
    scores = None
    if truth_path is not None and truth_path.exists():
        scores = score(result["findings"], pd.read_csv(truth_path, dtype={"msisdn": str}))
    if args.json:
        out = {k: v for k, v in result.items() if k != "findings"}
        out["findings"] = len(result["findings"])
        if scores:
            out.update(scores)
        print(json.dumps(out, indent=2, default=str))
    else:
        report(result, scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
