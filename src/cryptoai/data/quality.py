"""The data-quality report: one markdown page (plus a price/volume plot per series).

For each series it shows coverage, missing bars and the longest gaps, contract problems
and market anomalies (extreme moves, zero-volume or flat candles, stale prices), so a
researcher sees what the data is like before modelling it. See docs/data_quality_checks.md.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.data.validate import ValidationReport, validate_ohlcv

log = logging.getLogger(__name__)

Series = dict[str, tuple[pd.DataFrame, str]]

#: A log return beyond this many local robust standard deviations (1.4826 * rolling MAD) is
#: "extreme"; fat tails make a few of them normal, so they are listed, not treated as errors.
EXTREME_SIGMAS = 12.0
#: Bars in the centred rolling window that sets the local volatility scale.
LOCAL_WINDOW = 100
#: Consecutive bars with an unchanged close that count as a stale price.
STALE_BARS = 10
_MAX_PLOT_POINTS = 2000


def quality_report(series: Series, out_md: Path, eda_dir: Path, top_gaps: int = 5) -> str:
    """Write the markdown report to ``out_md`` and one PNG per series under ``eda_dir``."""
    out_md, eda_dir = Path(out_md), Path(eda_dir)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    eda_dir.mkdir(parents=True, exist_ok=True)
    reports = {name: validate_ohlcv(df, tf) for name, (df, tf) in series.items()}
    lines = [
        "# Data quality report",
        "",
        f"{len(series)} series. Gaps are `[first missing bar, next bar)` in UTC; the checks are"
        " described in docs/data_quality_checks.md.",
        "",
        "| series | timeframe | first bar | last bar | bars | missing | gaps | contract |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for name, rep in reports.items():
        lines.append(
            f"| {name} | {rep.timeframe or '?'} | {_ts(rep.first)} | {_ts(rep.last)} | "
            f"{rep.n_bars:,} | {rep.missing_pct:.2f}% | {len(rep.gaps)} | "
            f"{'OK' if rep.ok else 'BROKEN'} |"
        )
    for name, (df, _) in series.items():
        rep = reports[name]
        lines += ["", f"## {name}", ""]
        lines += _coverage_lines(rep)
        lines += _gap_lines(rep, top_gaps)
        found = anomalies(df, rep)
        lines += ["", "**Anomalies:** none found." if not found else "**Anomalies:**"]
        lines += [f"- {a}" for a in found]
        png = _plot(df, rep, name, eda_dir / f"{_slug(name)}.png", top_gaps)
        if png is not None:
            link = Path(os.path.relpath(png, out_md.parent)).as_posix()
            lines += ["", f"![{name}: close and volume]({link})"]
    text = "\n".join(lines) + "\n"
    out_md.write_text(text, encoding="utf-8")
    log.debug("data quality report written to %s", out_md)  # the CLI says it once
    return text


def quality_summary(series: Series) -> str:
    """A short fixed-width table for the terminal: one line per series."""
    rows = [("series", "tf", "first bar", "last bar", "bars", "missing", "gaps", "longest gap",
             "contract")]  # fmt: skip
    for name, (df, tf) in series.items():
        rep = validate_ohlcv(df, tf)
        longest = max(rep.gaps, key=lambda g: g[2], default=None)
        rows.append(
            (
                name,
                rep.timeframe or "?",
                _ts(rep.first),
                _ts(rep.last),
                f"{rep.n_bars:,}",
                f"{rep.missing_pct:.2f}%",
                str(len(rep.gaps)),
                f"{longest[2]} bars at {_ts(longest[0])}" if longest else "-",
                "OK" if rep.ok else f"BROKEN: {rep.problems()[0]}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )


def anomalies(df: pd.DataFrame, report: ValidationReport | None = None) -> list[str]:
    """Contract problems, then market oddities worth a look (not errors in themselves)."""
    report = report or validate_ohlcv(df)
    found = report.problems() + list(report.warnings)
    frame = _plottable(df)
    if frame.empty or not {"open", "high", "low", "close", "volume"} <= set(frame.columns):
        return found
    close = frame["close"].to_numpy(dtype="float64")
    extreme = _extreme_moves(close)
    if len(extreme):
        r = np.diff(np.log(close))
        worst = extreme[np.argsort(-np.abs(r[extreme]))][:3]
        moves = ", ".join(f"{np.expm1(r[i]):+.1%} at {_ts(frame.index[i + 1])}" for i in worst)
        found.append(
            f"{len(extreme)} extreme moves beyond {EXTREME_SIGMAS:g} local robust sigmas"
            f" (largest: {moves})"
        )
    zero = int((frame["volume"] == 0).sum())
    if zero:
        found.append(f"{zero} bars with zero volume ({zero / len(frame):.2%})")
    prices = frame[["open", "high", "low", "close"]].to_numpy(dtype="float64")
    flat = int((prices.max(axis=1) == prices.min(axis=1)).sum())
    if flat:
        found.append(f"{flat} flat candles (open = high = low = close)")
    run, at = _longest_run(close)
    if run >= STALE_BARS:
        found.append(f"close unchanged for {run} bars from {_ts(frame.index[at])} (stale price?)")
    return found


def _extreme_moves(close: np.ndarray) -> np.ndarray:
    """Positions in the return series far outside the volatility of the bars around them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = pd.Series(np.diff(np.log(close)))
    r = r.where(np.isfinite(r))
    if r.count() < LOCAL_WINDOW:
        return np.array([], dtype=int)
    deviation = (r - r.median()).abs()
    rolling = deviation.rolling(LOCAL_WINDOW, center=True, min_periods=LOCAL_WINDOW // 2)
    scale = 1.4826 * rolling.median()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (deviation / scale).to_numpy()
    return np.flatnonzero(np.nan_to_num(z, nan=0.0, posinf=0.0) > EXTREME_SIGMAS)


def _coverage_lines(rep: ValidationReport) -> list[str]:
    if rep.n_bars == 0:
        return ["No bars."]
    days = (rep.last - rep.first) / pd.Timedelta(days=1) if rep.first is not None else 0.0
    return [
        f"- Coverage: {_ts(rep.first)} to {_ts(rep.last)} UTC ({days:,.1f} days)",
        f"- Bars: {rep.n_bars:,} of {rep.expected_bars:,} expected;"
        f" {rep.missing_bars:,} missing ({rep.missing_pct:.2f}%) in {len(rep.gaps)} gaps",
    ]


def _gap_lines(rep: ValidationReport, top: int) -> list[str]:
    if not rep.gaps:
        return []
    longest = sorted(rep.gaps, key=lambda g: (-g[2], g[0]))[:top]
    step = timeframe_to_timedelta(rep.timeframe) if rep.timeframe else None
    out = ["", f"Longest gaps (top {len(longest)} of {len(rep.gaps)}):", "",
           "| from | to (next bar) | missing bars | duration |", "|---|---|---:|---|"]  # fmt: skip
    for start, end, n in longest:
        duration = str(n * step) if step is not None else "?"
        out.append(f"| {_ts(start)} | {_ts(end)} | {n:,} | {duration} |")
    return out


def _plot(
    df: pd.DataFrame, rep: ValidationReport, name: str, path: Path, top_gaps: int
) -> Path | None:
    """Close (log scale when it spans a decade) over volume; the longest gaps shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = _plottable(df)
    if frame.empty or "close" not in frame.columns:
        return None
    frame, per_point = _downsample(frame)
    fig = Figure(figsize=(10, 4.5))
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.08, hspace=0.08)
    FigureCanvasAgg(fig)
    ax_price, ax_volume = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    x = frame.index.tz_convert(None)
    ax_price.plot(x, frame["close"], lw=0.8, color="tab:blue")
    low, high = frame["close"].min(), frame["close"].max()
    if low > 0 and high / low > 10:
        ax_price.set_yscale("log")
    ax_price.set_ylabel("close")
    ax_price.set_title(f"{name} ({rep.timeframe or '?'}): {_ts(rep.first)} to {_ts(rep.last)} UTC")
    for start, end, _ in sorted(rep.gaps, key=lambda g: -g[2])[:top_gaps]:
        for ax in (ax_price, ax_volume):
            ax.axvspan(start.tz_convert(None), end.tz_convert(None), color="tab:red", alpha=0.25)
    if "volume" in frame.columns:
        ax_volume.fill_between(x, frame["volume"], step="post", color="tab:gray", lw=0)
        ax_volume.set_ylabel("volume" if per_point == 1 else f"volume per {per_point} bars")
    ax_price.grid(alpha=0.3)
    ax_volume.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return path


def _plottable(df: pd.DataFrame) -> pd.DataFrame:
    """Sorted, de-duplicated, UTC: the view plots and anomaly scans need."""
    if not isinstance(df.index, pd.DatetimeIndex):
        return df.iloc[0:0]
    idx = df.index if df.index.tz is not None else df.index.tz_localize("UTC")
    frame = df.set_axis(idx)
    if not (idx.is_monotonic_increasing and idx.is_unique):
        frame = frame[~idx.duplicated(keep="last")].sort_index()
    return frame


def _downsample(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """At most ``_MAX_PLOT_POINTS`` points: last close and summed volume per block of k bars."""
    k = -(-len(frame) // _MAX_PLOT_POINTS)
    if k <= 1:
        return frame, 1
    block = np.arange(len(frame)) // k
    agg = {"close": "last"} | ({"volume": "sum"} if "volume" in frame.columns else {})
    out = frame[list(agg)].groupby(block).agg(agg)
    out.index = frame.index[::k]
    return out, k


def _longest_run(values: np.ndarray) -> tuple[int, int]:
    """Length and start of the longest run of equal consecutive values."""
    if len(values) == 0:
        return 0, 0
    change = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1], [True])))
    lengths = np.diff(change)
    i = int(np.argmax(lengths))
    return int(lengths[i]), int(change[i])


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "series"


def _ts(ts: pd.Timestamp | None) -> str:
    if ts is None:
        return "-"
    return ts.strftime("%Y-%m-%d %H:%M")
