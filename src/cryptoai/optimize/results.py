"""What an optimization leaves behind: results.json, trials.csv, best_params.yaml, config.yaml,
trades.csv, ledger.json, report.md and plots, in ``reports/NAME_YYYYMMDD[_N]/``.

``results.json`` holds no timestamps, paths or counts from outside this sweep (the ledger's
running total is in ``ledger.json``), so the same config and seed write the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cryptoai.optimize.trials import Trial

#: Metrics shown in the console table and report, when present.
SHOWN_METRICS = ("sharpe", "total_return", "max_drawdown", "calmar", "n_trades")


@dataclass
class OptimizationResult:
    """Everything an optimization produced (``run_optimization``'s return value)."""

    config: Any
    trials: list[Trial]
    best: dict[str, Any] | None
    stable: dict[str, Any] | None
    statistics: dict[str, Any]
    out_dir: Path | None = None
    ledger: dict[str, Any] | None = None
    walk_forward: dict[str, Any] | None = None
    run_id: str | None = None
    study: str | None = None
    storage: str | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def best_params(self) -> dict[str, Any] | None:
        return None if self.best is None else self.best["params"]

    def trials_frame(self) -> pd.DataFrame:
        """One row a trial: number, state, params, then metrics."""
        return trials_frame(self.trials, [d for d in self.config.space])

    def results(self) -> dict[str, Any]:
        """The content of results.json."""
        out = {
            "config": self.config.model_dump(mode="json"),
            "trials": [t.record() for t in self.trials],
            "best": self.best,
            "stable": self.stable,
            "statistics": self.statistics,
        }
        if self.walk_forward is not None:
            out["walk_forward"] = self.walk_forward
        return out


def trials_frame(trials: Sequence[Trial], names: Sequence[str]) -> pd.DataFrame:
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number}
        if t.window is not None:
            row["window"] = t.window
        row["state"] = t.state
        row |= {n: t.params.get(n) for n in names}
        row["value"] = t.value
        row |= t.metrics
        rows.append(row)
    return pd.DataFrame(rows)


def output_dir(root: Path, name: str, today: dt.date) -> Path:
    """``root/NAME_YYYYMMDD``, or ``_2``, ``_3``... when that folder is taken."""
    base = root / f"{name}_{today:%Y%m%d}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}")
    return path


def dumps(obj: Any) -> str:
    """Deterministic JSON: NaN/inf as null, numpy scalars as numbers."""
    from cryptoai.backtest.metrics import to_jsonable

    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def _fmt(value: Any, kind: str = "g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "%":
        return f"{value:+.2%}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def top_trials(result: OptimizationResult, n: int = 10) -> list[Trial]:
    maximize = result.config.objective.maximize
    done = [t for t in result.trials if t.value is not None]
    sign = 1.0 if maximize else -1.0
    return sorted(done, key=lambda t: (-sign * t.value, t.number))[:n]


def statistics_lines(result: OptimizationResult) -> list[tuple[str, str]]:
    s = result.statistics
    wf = "walk_forward_efficiency" in s
    sharpe_label = "out-of-sample Sharpe, stitched (ann.)" if wf else "best Sharpe (annualized)"
    rows = [
        ("trials run", _fmt(s.get("n_trials"))),
        ("completed / failed", f"{_fmt(s.get('n_complete'))} / {_fmt(s.get('n_failed'))}"),
        ("skipped (constraints, invalid)", _fmt(s.get("n_skipped"))),
        (sharpe_label, _fmt(s.get("best_sharpe_annualized"))),
        ("expected max Sharpe of noise (ann.)", _fmt(s.get("expected_max_sharpe_annualized"))),
        ("deflated Sharpe ratio", _fmt(s.get("deflated_sharpe"))),
        ("probability of backtest overfitting", _fmt(s.get("pbo"))),
        ("lookahead check", str(s.get("lookahead_check", "not run"))),
    ]
    if result.ledger is not None:
        rows += [
            ("trials this data has seen (ledger)", _fmt(result.ledger.get("n_trials_total"))),
            ("deflated Sharpe by the ledger", _fmt(result.ledger.get("deflated_sharpe"))),
        ]
    if wf:
        rows += [
            ("walk-forward efficiency", _fmt(s.get("walk_forward_efficiency"))),
            ("P(OOS Sharpe > 0)", _fmt(s.get("oos_probabilistic_sharpe"))),
        ]
    return rows


def report_markdown(result: OptimizationResult, plots: dict[str, str]) -> str:
    """The human summary: best vs stable, the statistics and how to read them, the plots."""
    cfg = result.config
    names = list(cfg.space)
    metric = cfg.objective.metric
    lines = [
        f"# Optimization {cfg.name}",
        "",
        f"Strategy `{cfg.strategy}`, method `{cfg.method}`"
        + (f" (sampler `{cfg.sampler}`)" if cfg.method == "optuna" else "")
        + f", objective {cfg.objective.direction} `{metric}`, min_trades {cfg.min_trades}"
        + (", **smoke run**" if cfg.smoke else "")
        + ".",
        "",
        "## Best and stable",
        "",
    ]
    if result.best:
        lines.append(
            f"- best: `{result.best['params']}` → {metric} {_fmt(result.best['metrics'].get(metric))}"
        )
    if result.stable:
        st = result.stable
        lines.append(
            f"- stable: `{st['params']}` → {metric} {_fmt(st['metrics'].get(metric))},"
            f" neighbourhood median {_fmt(st.get('score'))} over {len(st.get('neighbours', []))}"
            " neighbours"
        )
        lines.append(
            f"- one step away from the best, the objective's median is"
            f" {_fmt(st.get('best_neighbourhood_median'))} (falls off by"
            f" {_fmt(st.get('best_falloff'))})"
        )
    lines += ["", "## Statistics", "", "| statistic | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in statistics_lines(result)]
    lines += [
        "",
        "The deflated Sharpe ratio is the probability that the best trial's true Sharpe ratio"
        " is above zero once the number of trials, the spread of their Sharpe ratios, the"
        " sample length and fat tails are accounted for (below 0.95: the best may be luck)."
        " PBO is the share of half/half splits of the bars where the in-sample winner ranks"
        " in the bottom half out of sample (above 0.5: the selection is worse than random).",
        "",
    ]
    if result.walk_forward:
        lines += [
            "## Walk-forward windows",
            "",
            "| window | test | params | in-sample | out-of-sample |",
            "|---|---|---|---|---|",
        ]
        for w in result.walk_forward["windows"]:
            lines.append(
                f"| {w['window']} | {w['test_start'][:10]} – {w['test_end'][:10]} |"
                f" `{w['params']}` | {_fmt(w['in_sample'])} | {_fmt(w['out_of_sample'])} |"
            )
        lines.append("")
    lines += [
        "## Top trials",
        "",
        "| # | " + " | ".join(names) + f" | {metric} | " + " | ".join(SHOWN_METRICS) + " |",
    ]
    lines.append("|" + "---|" * (len(names) + 2 + len(SHOWN_METRICS)))
    for t in top_trials(result):
        cells = [str(t.number), *(_fmt(t.params.get(n)) for n in names), _fmt(t.value)]
        cells += [_fmt(t.metrics.get(m)) for m in SHOWN_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Plots", ""]
    lines += [f"![{k}]({v})" for k, v in plots.items()]
    return "\n".join(lines) + "\n"


def write_yaml(path: Path, obj: Any) -> Path:
    from cryptoai.backtest.metrics import to_jsonable

    path.write_text(yaml.safe_dump(to_jsonable(obj), sort_keys=False))
    return path
