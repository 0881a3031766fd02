"""Plots for an investigation, as PNG bytes: activity timeline, gaps, daily charges.

Every function draws on its own :class:`matplotlib.figure.Figure` with an Agg canvas
attached, so nothing touches pyplot's global state (a notebook's inline backend keeps
working) and nothing needs a display. matplotlib is a regular dependency, so the plain
install draws every plot; it is imported only when a plot is drawn (keeping start-up
fast), and :func:`available` tells whether it can be (a broken environment).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from telediag.investigation import InvestigatedFinding, Investigation

#: Detector kinds whose findings are about timing, so their gaps are worth a plot.
GAP_KINDS: frozenset[str] = frozenset({"burst", "periodic"})

#: One colour per record type, shared by every plot (colour-blind-safe palette).
TYPE_COLORS: dict[str, str] = {
    "voice": "#0072B2",
    "csd": "#CC79A7",
    "sms": "#009E73",
    "mms": "#E69F00",
    "data": "#56B4E9",
}
_OTHER_COLOR = "#999999"
_EVIDENCE_COLOR = "#D55E00"
_TYPE_ORDER = ("voice", "csd", "sms", "mms", "data")

_WIDTH_IN = 8.0
_HEIGHT_IN = 3.0
_DPI = 100


def available() -> bool:
    """Whether matplotlib can be imported, i.e. whether plots can be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(height: float = _HEIGHT_IN) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH_IN, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    finally:
        fig.clear()
    return buf.getvalue()


def _local_naive(times: pd.Series) -> np.ndarray:
    """Times as naive local datetime64 values, so axes read in the investigation's zone."""
    stamps = pd.to_datetime(times)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]")


def _type_order(types: list[str]) -> list[str]:
    known = [t for t in _TYPE_ORDER if t in types]
    return known + sorted(t for t in set(types) if t not in _TYPE_ORDER)


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def timeline_png(inv: Investigation) -> bytes:
    """Every record of the subscriber on a time line, one row per record type.

    Each record is a tick in its type's colour; evidence records of any finding are
    taller ticks in a contrasting colour, so a burst or a schedule stands out at a glance.
    """
    frame = inv.records
    fig = _figure()
    ax = fig.add_subplot()
    if frame.empty:
        _empty(ax, "no records in the period")
        return _png(fig)
    types = _type_order([str(t) for t in frame["record_type"].unique()])
    row = {t: i for i, t in enumerate(types)}
    times = _local_naive(frame["start_time"])
    ys = frame["record_type"].astype(str).map(row).to_numpy(dtype=float)
    evidence = (
        frame["evidence"].fillna(False).to_numpy(dtype=bool)
        if "evidence" in frame
        else np.zeros(len(frame), dtype=bool)
    )
    # Ticks rather than dots: dense stretches read as solid bars, gaps as white space.
    for t in types:
        sel = (ys == row[t]) & ~evidence
        if sel.any():
            ax.scatter(
                times[sel],
                ys[sel],
                s=160,
                marker="|",
                color=TYPE_COLORS.get(t, _OTHER_COLOR),
                alpha=0.8,
                linewidths=2.0,
                label=f"{t} ({int(sel.sum())})",
            )
    if evidence.any():
        ax.scatter(
            times[evidence],
            ys[evidence],
            s=420,
            marker="|",
            color=_EVIDENCE_COLOR,
            linewidths=2.2,
            label=f"evidence ({int(evidence.sum())})",
            zorder=3,
        )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_yticks(range(len(types)), types)
    ax.set_ylim(len(types) - 0.4, -0.6)  # first type on top
    ax.grid(axis="x", color="#ddd", linewidth=0.6)
    _date_axis(ax)
    ax.set_title(
        f"Activity of {inv.msisdn} ({len(frame)} records, local time {inv.period.tz})",
        fontsize=10,
    )
    return _png(fig)


def gap_kind(finding: InvestigatedFinding) -> str | None:
    """The detector kind of the finding's rule if it is a timing one (burst, periodic)."""
    kind = finding.detector_kind
    return kind if kind in GAP_KINDS else None


def evidence_gaps(finding: InvestigatedFinding) -> np.ndarray:
    """Seconds between consecutive evidence records of a finding, in time order."""
    stamps = sorted(pd.Timestamp(r.start_time) for r in finding.evidence_records)
    if len(stamps) < 2:
        return np.array([], dtype=float)
    values = np.array([s.value for s in stamps], dtype=np.int64)
    return np.diff(values).astype(float) / 1e9


def _gap_unit(seconds: np.ndarray) -> tuple[float, str]:
    median = float(np.median(seconds))
    if median >= 2 * 3600:
        return 3600.0, "hours"
    if median >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def gaps_png(inv: Investigation, finding: InvestigatedFinding) -> bytes | None:
    """Histogram of the gaps between the finding's evidence records.

    Only for findings of burst and periodic rules (whose point is the timing); None for
    any other finding, and for one with fewer than two evidence records.
    """
    kind = gap_kind(finding)
    if kind is None:
        return None
    gaps = evidence_gaps(finding)
    if gaps.size == 0:
        return None
    scale, unit = _gap_unit(gaps)
    values = gaps / scale
    median = float(np.median(values))
    fig = _figure()
    ax = fig.add_subplot()
    lo, hi = float(values.min()), float(values.max())
    if hi > lo:
        bins: Any = 20
    else:  # every gap the same: one bar centred on it
        half = max(abs(lo) * 0.05, 0.5)
        bins = np.array([lo - half, lo + half])
    ax.hist(values, bins=bins, color=TYPE_COLORS["sms"] if kind == "burst" else "#56B4E9")
    ax.axvline(median, color=_EVIDENCE_COLOR, linestyle="--", linewidth=1.2)
    ax.annotate(
        f"median {median:.3g} {unit}",
        xy=(median, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        color=_EVIDENCE_COLOR,
        fontsize=8,
    )
    ax.set_xlabel(f"gap between consecutive evidence records ({unit})")
    ax.set_ylabel("gaps")
    ax.grid(axis="y", color="#ddd", linewidth=0.6)
    ax.set_title(
        f"{finding.rule_id} {finding.root_cause}: {gaps.size} gaps ({kind})",
        fontsize=10,
    )
    return _png(fig)


def daily_charges_png(inv: Investigation) -> bytes:
    """Charge per local day, stacked by record type, with the evidence share outlined."""
    frame = inv.records
    if "own" in frame.columns:  # another number's evidence is not this subscriber's charge
        frame = frame[frame["own"]]
    fig = _figure()
    ax = fig.add_subplot()
    if frame.empty:
        _empty(ax, "no records in the period")
        return _png(fig)
    charge = pd.to_numeric(frame["charge"], errors="coerce").fillna(0.0)
    day = pd.to_datetime(frame["start_time"]).dt.date
    table = (
        pd.DataFrame({"day": day, "type": frame["record_type"].astype(str), "charge": charge})
        .pivot_table(index="day", columns="type", values="charge", aggfunc="sum", fill_value=0.0)
        .sort_index()
    )
    days = pd.date_range(min(table.index), max(table.index), freq="D").date
    table = table.reindex(days, fill_value=0.0)
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for t in _type_order(list(table.columns)):
        values = table[t].to_numpy(dtype=float)
        if not values.any():
            continue
        ax.bar(x, values, width=0.7, bottom=bottom, color=TYPE_COLORS.get(t, _OTHER_COLOR), label=t)
        bottom += values
    if "evidence" in frame:
        ev = charge.where(frame["evidence"].fillna(False).astype(bool), 0.0)
        per_day = ev.groupby(day).sum().reindex(days, fill_value=0.0).to_numpy(dtype=float)
        if per_day.any():
            some = per_day > 0
            ax.bar(
                x[some],
                per_day[some],
                width=0.7,
                fill=False,
                edgecolor=_EVIDENCE_COLOR,
                linewidth=1.4,
                hatch="//",
                label="of which evidence",
            )
    if not bottom.any():
        ax.text(
            0.5,
            0.5,
            "no charges recorded in the period",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#555",
        )
    else:
        ax.set_ylim(0, float(bottom.max()) * 1.3)
        ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=4)
    step = max(1, len(days) // 10)
    ax.set_xticks(x[::step], [d.strftime("%m-%d") for d in days[::step]])
    ax.set_ylabel("charge")
    ax.set_xlim(-0.7, len(days) - 0.3)
    ax.grid(axis="y", color="#ddd", linewidth=0.6)
    ax.set_title(
        f"Daily charges of {inv.msisdn} (total {inv.overview.charge:,.2f})",
        fontsize=10,
    )
    return _png(fig)
