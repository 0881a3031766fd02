"""The ``telediag`` command: scan, investigate, columns, demo, rules, decode, case.

Exit status: 0 when the command ran (whether or not anything was found); 2 for bad
usage or unreadable input, with one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from telediag.catalog import load_rules
from telediag.errors import TelediagError

EXIT_OK = 0
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _StderrProgress:
    """Stage-by-stage progress on stderr for long scans."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.perf_counter()
        self.tty = stream.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        # ``done`` counts finished steps: a rule starting is number done + 1, the end
        # of a stage has done == total.
        shown = min(done + 1, total)
        text = f"[{elapsed:6.1f}s] {stage}" + (f" ({shown}/{total})" if total > 1 else "")
        if self.tty:
            self.stream.write("\r\033[K" + text)
            if stage == "rules done":
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


class _BarProgress:
    """A progress bar on stderr for bucketed scans: rows and buckets done, rows per
    second and the time left, one bar per phase (partitioning, scanning buckets)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Task) -> Text:
                speed = task.finished_speed or task.speed
                return Text("" if speed is None else f"{speed:,.0f} rows/s")

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
            TextColumn("{task.fields[buckets]}"),
            Rate(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(compact=True),
            # Off a terminal (a log file), one wide line per phase rather than wrapped cells.
            console=Console(file=stream, width=None if stream.isatty() else 160),
            transient=False,
        )
        self.task: Any = None
        self.buckets = (0, 0)
        self.bar.start()

    def _label(self) -> str:
        done, total = self.buckets
        return f"{done}/{total} buckets" if total else ""

    def phase(self, name: str, rows: int, buckets: int) -> None:
        self._finish()
        self.buckets = (0, buckets)
        self.task = self.bar.add_task(name, total=max(rows, 1), buckets=self._label())

    def advance(self, rows: int, buckets: int = 0) -> None:
        if self.task is None:
            return
        self.buckets = (self.buckets[0] + buckets, self.buckets[1])
        self.bar.update(self.task, advance=rows, buckets=self._label())

    def _finish(self) -> None:
        """End the current bar where it is (the row total was an estimate)."""
        for task in self.bar.tasks:
            if task.id == self.task:
                self.bar.update(task.id, total=max(task.completed, 1), completed=task.completed)

    def close(self) -> None:
        self._finish()
        self.bar.stop()


def bundled_fixtures_dir() -> Path:
    """The sample records shipped with the package (wheel or checkout)."""
    from importlib import resources

    packaged = resources.files("telediag") / "_bundled" / "fixtures"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "fixtures" / "cdr"


def _cmd_scan(args: argparse.Namespace) -> int:
    from telediag.findings import EVIDENCE_SCHEMA, FINDINGS_SCHEMA
    from telediag.output import output_format, write_frame, write_table
    from telediag.scan import scan
    from telediag.views.summary import scan_summary

    output_format(args.out)
    if args.rejects:
        output_format(args.rejects)
    if args.evidence:
        output_format(args.evidence)
    if args.engine == "spark":
        return _scan_on_spark(args)
    _warn_small_budget(args.memory)
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    result = scan(
        list(args.inputs),
        rules=args.rules,
        tz=args.tz,
        column_map=args.column_map,
        select=args.select,
        ignore=args.ignore,
        progress=_StderrProgress(sys.stderr) if show_progress else None,
        workers=args.workers,
        memory=args.memory,
        buckets=args.buckets,
        spill_dir=args.spill_dir,
        bucket_progress=_BarProgress(sys.stderr) if show_progress else None,
    )
    write_frame(result.findings, args.out, FINDINGS_SCHEMA)
    if args.evidence:
        write_frame(result.evidence, args.evidence, EVIDENCE_SCHEMA)
    if args.rejects:
        write_table(result.rejects(), args.rejects)
    if not args.quiet:
        print(scan_summary(result))
        print(f"\nFindings written to {args.out}")
        if args.rejects:
            print(f"Set-aside rows written to {args.rejects}")
    return EXIT_OK


def _warn_small_budget(memory: str | None) -> None:
    """A budget no scan can keep to is said on stderr (the scan still runs)."""
    from telediag.outofcore import budget_warning, parse_size

    note = budget_warning(parse_size(memory)) if memory else None
    if note is not None:
        print(f"telediag: warning: {note}", file=sys.stderr)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from telediag.engine import default_workers
    from telediag.outofcore import parse_size
    from telediag.store import prepare

    _warn_small_budget(args.memory)

    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    started = time.perf_counter()
    manifest = prepare(
        list(args.inputs),
        args.out,
        column_map=args.column_map,
        tz=args.tz,
        rules=load_rules(args.rules) if args.rules else None,
        buckets=args.buckets,
        memory=parse_size(args.memory) if args.memory else None,
        workers=args.workers or default_workers(),
        spill_dir=args.spill_dir,
        progress=_BarProgress(sys.stderr) if show_progress else None,
    )
    if not args.quiet:
        part = manifest.parts[-1]
        print(
            f"{args.out}: part {part['part']} added, {part['rows_read']:,} rows read, "
            f"{part['rows_used']:,} used, in {time.perf_counter() - started:.1f} s; the store "
            f"holds {manifest.report.rows_used:,} rows in {manifest.buckets} buckets"
        )
    return EXIT_OK


def _scan_on_spark(args: argparse.Namespace) -> int:
    from telediag.spark import scan_command
    from telediag.views.summary import scan_summary

    result = scan_command(
        list(args.inputs),
        args.out,
        master=args.master,
        rules=args.rules,
        tz=args.tz,
        column_map=args.column_map,
        select=args.select,
        ignore=args.ignore,
        evidence=args.evidence,
        rejects=args.rejects,
    )
    if not args.quiet:
        print(scan_summary(result.to_local(with_lists=False)))
        print(f"\nFindings written to {args.out} (a directory of part files)")
        if args.rejects:
            print(f"Set-aside rows written to {args.rejects}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from telediag.findings import FINDINGS_SCHEMA
    from telediag.output import write_frame
    from telediag.scan import scan
    from telediag.views.summary import scan_summary

    folder = bundled_fixtures_dir()
    files = sorted(folder.glob("*/*.csv"))
    if not files:
        raise TelediagError(f"{folder}: no bundled fixtures found")
    result = scan(files, tz="Asia/Shanghai")
    print(f"telediag demo: scanning {len(files)} bundled sample files from {folder}\n")
    print(scan_summary(result, top=args.top))
    if args.out:
        write_frame(result.findings, args.out, FINDINGS_SCHEMA)
        print(f"\nFindings written to {args.out}")
    return EXIT_OK


def _cmd_rules_list(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules, include_removed=True)
    width = max((len(r.name) for r in rules), default=4)
    for r in rules:
        print(f"{r.id}  {r.name.ljust(width)}  {r.status.value:<12} {r.root_cause}")
    return EXIT_OK


def _cmd_rules_show(args: argparse.Namespace) -> int:
    from telediag.docs import rule_markdown

    rules = load_rules(args.rules, include_removed=True)
    wanted = args.rule_id
    for r in rules:
        if wanted in (r.id, r.name, *r.aliases):
            print(rule_markdown(r))
            return EXIT_OK
    raise TelediagError(f"no rule {wanted!r} (see 'telediag rules list')")


def _cmd_decode(args: argparse.Namespace) -> int:
    from telediag.callerid import decode_caller_ids, format_decoded

    frame = decode_caller_ids(list(args.numbers))
    print(format_decoded(frame, as_json=args.json))
    return EXIT_OK


def _cmd_investigate(args: argparse.Namespace) -> int:
    from telediag.investigation import check_bound, investigate
    from telediag.views.report import render

    fmt = args.format
    if fmt is None:
        suffix = Path(args.out).suffix.lower() if args.out else ""
        fmt = {".md": "md", ".html": "html", ".htm": "html", ".json": "json"}.get(suffix, "text")
    check_bound(args.date_from, "--from")  # a bad bound names the option given
    check_bound(args.date_to, "--to")
    inv = investigate(
        list(args.inputs),
        args.msisdn,
        start=args.date_from,
        end=args.date_to,
        complaint_date=args.complaint_date,
        rules=args.rules,
        tz=args.tz,
        column_map=args.column_map,
        policy=args.policy,
    )
    text = render(inv, fmt)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"{len(inv.findings)} finding(s) for {inv.msisdn}; report written to {out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _cmd_columns_check(args: argparse.Namespace) -> int:
    from telediag.columns import check_columns

    report = check_columns(
        list(args.inputs), args.column_map, args.tz, load_rules(args.rules, select=None)
    )
    print(report.render())
    return EXIT_OK


def _cmd_columns_suggest(args: argparse.Namespace) -> int:
    from telediag.columns import suggest_map

    sys.stdout.write(suggest_map(args.input))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = _Parser(
        prog="telediag",
        description="Find the handset and configuration faults behind disputed mobile charges.",
    )
    from telediag import __version__

    parser.add_argument("--version", action="version", version=f"telediag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("scan", help="scan CDRs with the rule catalog and write findings")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="Parquet file, directory, or CSV")
    p.add_argument(
        "--out", required=True, metavar="FINDINGS", help="findings file: .parquet, .csv or .jsonl"
    )
    p.add_argument("--rules", metavar="DIR", help="rules directory (default: shipped rules)")
    p.add_argument("--tz", metavar="ZONE", help="time zone of naive times (default UTC)")
    p.add_argument("--column-map", metavar="FILE", help="YAML column map for other feeds")
    p.add_argument("--select", nargs="+", metavar="PREFIX", help="run only these rule ids")
    p.add_argument("--ignore", nargs="+", metavar="PREFIX", help="skip these rule ids")
    p.add_argument("--rejects", metavar="FILE", help="write the set-aside rows here")
    p.add_argument("--evidence", metavar="FILE", help="write finding_id -> record_id here")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )
    p.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="where to scan: this process, or Spark (needs telediag[spark])",
    )
    p.add_argument(
        "--master", metavar="URL", help="Spark master for --engine spark (default: local[*])"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print no summary")
    p.add_argument(
        "--memory",
        metavar="SIZE",
        help="memory budget, e.g. 2GB; a larger input is scanned in buckets spilled to "
        "disk (default: half of the memory available)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="threads for the scan and buckets scanned at once (default: cores, at most 4)",
    )
    p.add_argument(
        "--buckets", type=_positive_int, metavar="N", help="scan in N buckets, spilled to disk"
    )
    p.add_argument(
        "--spill-dir", metavar="DIR", help="where bucket spill files go (default: temp dir)"
    )
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("investigate", help="investigate one subscriber's dispute")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="Parquet file, directory, or CSV")
    p.add_argument("--msisdn", required=True, help="the subscriber's number as in the records")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="start of the period")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="end of the period (inclusive day)")
    p.add_argument("--complaint-date", metavar="DATE", help="date of the complaint (deadlines)")
    p.add_argument(
        "--format",
        choices=["text", "md", "html", "json"],
        help="report format (default: from --out's ending, else text)",
    )
    p.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--rules", metavar="DIR", help="rules directory (default: shipped rules)")
    p.add_argument("--tz", metavar="ZONE", help="time zone of naive times (default UTC)")
    p.add_argument("--column-map", metavar="FILE", help="YAML column map for other feeds")
    p.add_argument("--policy", metavar="FILE", help="operator policy (charge advice, deadlines)")
    p.set_defaults(func=_cmd_investigate)

    p = sub.add_parser(
        "prepare", help="write the input once as a store (normalized, bucketed, sorted)"
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="Parquet file, directory, or CSV")
    p.add_argument(
        "--out", required=True, metavar="STORE", help="store directory (new or existing)"
    )
    p.add_argument("--column-map", metavar="FILE", help="YAML column map for other feeds")
    p.add_argument("--tz", metavar="ZONE", help="time zone of naive times (default UTC)")
    p.add_argument("--rules", metavar="DIR", help="rules directory (default: shipped rules)")
    p.add_argument("--memory", metavar="SIZE", help="memory budget, e.g. 2GB")
    p.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="threads, and buckets written at once (default: cores, at most 4)",
    )
    p.add_argument("--buckets", type=_positive_int, metavar="N", help="buckets of a new store")
    p.add_argument("--spill-dir", metavar="DIR", help="where spill files go (default: temp dir)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("demo", help="scan the bundled sample records")
    p.add_argument("--out", metavar="FINDINGS", help="also write the findings here")
    p.add_argument("--top", type=int, default=20, help="how many findings to print")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("rules", help="list or show the rule catalog")
    rsub = p.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    q = rsub.add_parser("list", help="one line per rule")
    q.add_argument("--rules", metavar="DIR", help="rules directory")
    q.set_defaults(func=_cmd_rules_list)
    q = rsub.add_parser("show", help="a rule's documentation")
    q.add_argument("rule_id", metavar="ID")
    q.add_argument("--rules", metavar="DIR", help="rules directory")
    q.set_defaults(func=_cmd_rules_show)

    p = sub.add_parser("columns", help="check an input against the contract, or draft a map")
    csub = p.add_subparsers(dest="columns_command", required=True, parser_class=_Parser)
    q = csub.add_parser(
        "check", help="how each canonical column reads, and what would be set aside (no rules)"
    )
    q.add_argument("inputs", nargs="+", metavar="INPUT", help="Parquet file, directory, or CSV")
    q.add_argument("--column-map", metavar="MAP", help="YAML column map for other feeds")
    q.add_argument("--tz", metavar="ZONE", help="time zone of naive times (default UTC)")
    q.add_argument("--rules", metavar="DIR", help="rules directory (default: shipped rules)")
    q.set_defaults(func=_cmd_columns_check)
    q = csub.add_parser("suggest", help="print a draft column map (YAML) for a file")
    q.add_argument("input", metavar="INPUT", help="a CSV or Parquet file")
    q.set_defaults(func=_cmd_columns_suggest)

    p = sub.add_parser("decode", help="decode international incoming caller IDs")
    p.add_argument("numbers", nargs="+", metavar="NUMBER")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_cmd_decode)

    from telediag.cases.commands import add_case_commands

    add_case_commands(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``telediag`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TelediagError as exc:
        print(f"telediag: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("telediag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
