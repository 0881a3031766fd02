"""``telediag case ...``: the dispute desk on the command line.

Every command takes ``--db`` (a SQLite file or a PostgreSQL URL; default
``$TELEDIAG_DB``, else a file in the user's data directory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from telediag.cases.models import CaseSummary
from telediag.errors import InputError


def _store(args: argparse.Namespace) -> Any:
    from telediag.cases.store import CaseStore

    return CaseStore(args.db)


def _print_json_lines(items: list[dict[str, Any]]) -> None:
    for item in items:
        print(json.dumps(item, ensure_ascii=False))


def _cmd_open(args: argparse.Namespace) -> int:
    from telediag.cases.db import parse_day

    day = parse_day(args.complaint_date, "--complaint-date")
    with _store(args) as store:
        case = store.open_case(
            list(args.inputs),
            args.msisdn,
            day,
            summary=args.summary,
            by=args.by,
            start=args.date_from,
            end=args.date_to,
            tz=args.tz,
            column_map=args.column_map,
            policy=args.policy,
            rules=args.rules,
        )
        seen = {
            f.finding_key: [i for i in store.cases_with_finding(f.finding_key) if i != case.id]
            for f in case.findings
        }
    causes = (
        ", ".join(f"{f.root_cause} ({f.rule_id})" for f in case.findings) or "no root cause found"
    )
    d = case.deadlines
    print(f"Case {case.id} opened for {case.msisdn}, complaint of {case.complaint_date}.")
    print(f"{len(case.findings)} finding(s): {causes}.")
    print(
        f"Due: acknowledge by {d.acknowledge}, investigate by {d.investigate}, "
        f"resolve by {d.resolve}."
    )
    for f in case.findings:
        if seen[f.finding_key]:
            where = ", ".join(str(i) for i in seen[f.finding_key])
            print(f"The {f.rule_id} finding ({f.finding_key}) is already in case {where}.")
    print(case.id)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from telediag.cases.render import list_text

    with _store(args) as store:
        cases: list[CaseSummary] = store.cases(args.status, due_by=args.due_by, as_of=args.as_of)
        if args.json:
            _print_json_lines([c.model_dump(mode="json") for c in cases])
            return 0
        pending = {c.id: c.overdue for c in store.cases(args.status, as_of=dt.date.max)}
    print(list_text(cases, pending))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from telediag.cases.render import render_case

    with _store(args) as store:
        case = store.case(args.case_id)
        inv = store.report(args.case_id)
    text = render_case(case, inv, args.format)
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None
        print(f"Case {case.id} written to {out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_note(args: argparse.Namespace) -> int:
    with _store(args) as store:
        case = store.note(args.case_id, args.text, by=args.by)
    print(f"Note added to case {case.id} ({case.status}).")
    return 0


def _cmd_close(args: argparse.Namespace) -> int:
    with _store(args) as store:
        case = store.close(
            args.case_id, args.outcome, note=args.note, by=args.by, policy=args.policy
        )
    print(f"Case {case.id} closed: {case.outcome}.")
    return 0


def _cmd_reopen(args: argparse.Namespace) -> int:
    with _store(args) as store:
        case = store.reopen(args.case_id, note=args.note, by=args.by)
    print(f"Case {case.id} reopened.")
    return 0


def _cmd_similar(args: argparse.Namespace) -> int:
    from telediag.cases.render import similar_text

    with _store(args) as store:
        case = store.case(args.case_id)
        similar = store.similar_cases(args.case_id)
    if args.json:
        _print_json_lines([s.model_dump(mode="json") for s in similar])
    else:
        print(similar_text(case, similar))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from telediag.output import output_format

    output_format(args.out)
    with _store(args) as store:
        n = store.export(args.out)
    print(f"{n} case(s) written to {args.out}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from telediag.cases.render import stats_text

    with _store(args) as store:
        frame = store.stats()
    if not args.json:
        print(stats_text(frame))
        return 0
    fixed = ["by", "key", "cases", "open", "closed"]
    outcomes = [c for c in frame.columns if c not in (*fixed, "no_fault_found_share")]
    for row in frame.to_dict(orient="records"):
        share = row["no_fault_found_share"]
        item = {k: row[k] for k in fixed}
        item["key"] = None if item["key"] is None or item["key"] != item["key"] else item["key"]
        item["outcomes"] = {o: int(row[o]) for o in outcomes}
        item["no_fault_found_share"] = None if share is None or share != share else share
        print(json.dumps({k: _plain(v) for k, v in item.items()}, ensure_ascii=False))
    return 0


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def add_case_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``case`` and its subcommands to the ``telediag`` parser's subparsers."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="PATH|URL",
        help="case store: a SQLite file or a postgresql:// URL "
        "(default: $TELEDIAG_DB, else cases.sqlite in the user's data directory)",
    )
    p = sub.add_parser("case", help="the dispute desk: keep cases, track deadlines, reuse outcomes")
    csub = p.add_subparsers(dest="case_command", required=True, parser_class=parser_class)

    q = csub.add_parser("open", parents=[db], help="investigate a complaint and keep it as a case")
    q.add_argument("inputs", nargs="+", metavar="INPUT", help="Parquet file, directory, or CSV")
    q.add_argument("--msisdn", required=True, help="the subscriber's number as in the records")
    q.add_argument("--complaint-date", required=True, metavar="DATE", help="YYYY-MM-DD")
    q.add_argument("--summary", metavar="TEXT", help="the complaint in a few words")
    q.add_argument("--by", metavar="NAME", help="who opens it (default: your user name)")
    q.add_argument("--from", dest="date_from", metavar="DATE", help="start of the period")
    q.add_argument("--to", dest="date_to", metavar="DATE", help="end of the period (inclusive day)")
    q.add_argument("--tz", metavar="ZONE", help="time zone of naive times (default UTC)")
    q.add_argument("--column-map", metavar="FILE", help="YAML column map for other feeds")
    q.add_argument("--policy", metavar="FILE", help="operator policy (charge advice, deadlines)")
    q.add_argument("--rules", metavar="DIR", help="rules directory (default: shipped rules)")
    q.set_defaults(func=_cmd_open)

    q = csub.add_parser("list", parents=[db], help="cases, their deadlines and what is overdue")
    q.add_argument(
        "--status", choices=["open", "closed", "all"], default="open", help="default: open"
    )
    q.add_argument("--due-by", metavar="DATE", help="only cases with a step due by this day")
    q.add_argument("--as-of", metavar="DATE", help="day to reckon overdue steps (default today)")
    q.add_argument("--json", action="store_true", help="one JSON object per case per line")
    q.set_defaults(func=_cmd_list)

    q = csub.add_parser("show", parents=[db], help="a case's report, history, status, outcome")
    q.add_argument("case_id", type=int, metavar="ID")
    q.add_argument("--format", choices=["text", "md", "html", "json"], default="text")
    q.add_argument("--out", metavar="FILE", help="write it here instead of stdout")
    q.set_defaults(func=_cmd_show)

    q = csub.add_parser("note", parents=[db], help="add a note (acknowledges the case)")
    q.add_argument("case_id", type=int, metavar="ID")
    q.add_argument("text", metavar="TEXT")
    q.add_argument("--by", metavar="NAME", help="who writes it (default: your user name)")
    q.set_defaults(func=_cmd_note)

    q = csub.add_parser("close", parents=[db], help="close a case with its outcome")
    q.add_argument("case_id", type=int, metavar="ID")
    q.add_argument(
        "--outcome",
        required=True,
        metavar="OUTCOME",
        help="refund, partial, no_refund, no_fault_found, or one the policy adds",
    )
    q.add_argument("--note", metavar="TEXT", help="why")
    q.add_argument("--by", metavar="NAME", help="who closes it (default: your user name)")
    q.add_argument("--policy", metavar="FILE", help="a policy whose outcomes are also allowed")
    q.set_defaults(func=_cmd_close)

    q = csub.add_parser("reopen", parents=[db], help="reopen a closed case")
    q.add_argument("case_id", type=int, metavar="ID")
    q.add_argument("--note", metavar="TEXT", help="why")
    q.add_argument("--by", metavar="NAME", help="who reopens it (default: your user name)")
    q.set_defaults(func=_cmd_reopen)

    q = csub.add_parser("similar", parents=[db], help="earlier cases like this one, and outcomes")
    q.add_argument("case_id", type=int, metavar="ID")
    q.add_argument("--json", action="store_true", help="one JSON object per case per line")
    q.set_defaults(func=_cmd_similar)

    q = csub.add_parser("export", parents=[db], help="one row per case, for reporting")
    q.add_argument("--out", required=True, metavar="FILE", help=".parquet, .csv or .jsonl")
    q.set_defaults(func=_cmd_export)

    q = csub.add_parser("stats", parents=[db], help="how cases ended, per rule and root cause")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=_cmd_stats)
