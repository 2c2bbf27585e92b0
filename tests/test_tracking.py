"""MLflow tracking against a real SQLite-backed store in a temp dir (one store per module)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version
from sklearn.linear_model import LogisticRegression

from cryptoai import tracking
from cryptoai.errors import BadInputError, ConfigError
from cryptoai.tracking.runs import RunTemplate

REPO = Path(__file__).resolve().parents[1]

TEMPLATE = {
    "experiment_id": "exp-test-001",
    "owner": "ana",
    "date": "2025-03-04",
    "objective": "check that runs record what produced them",
    "dataset": "synthetic BTC/USDT 1h 2024",
    "config_file": "configs/experiments/test.yaml",
    "model": "logistic regression",
    "metrics": ["accuracy", "log_loss"],
}


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite store of this test's own, with artifacts beside it."""
    root = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
    monkeypatch.delenv(tracking.ARTIFACT_ROOT_ENV, raising=False)
    tracking.configure()
    yield root
    mlflow.set_tracking_uri(None)


def _run(run_id: str):
    return MlflowClient().get_run(run_id)


def _git(*args: str, cwd: Path = REPO) -> str | None:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def _req_name(line: str) -> str | None:
    try:
        return Requirement(line).name.lower()
    except InvalidRequirement:
        return None


def _torch_pin() -> str:
    return f"torch=={Version(metadata.version('torch')).base_version}"


# ---------------------------------------------------------------- where runs go


def test_tracking_uri_prefers_env_then_repo_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri() == "http://127.0.0.1:5999"
    assert tracking.artifact_root() is None  # a server decides where artifacts go

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "cryptoai"\n')
    deep = tmp_path / "notebooks" / "other"
    deep.mkdir(parents=True)
    (deep / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    monkeypatch.chdir(deep)
    root = tmp_path.resolve()
    assert tracking.tracking_uri() == f"sqlite:///{root}/mlflow.db"
    assert tracking.artifact_root() == (root / "mlartifacts").as_uri()

    monkeypatch.setenv(tracking.ARTIFACT_ROOT_ENV, "s3://bucket/mlflow/")
    assert tracking.artifact_root() == "s3://bucket/mlflow"


def test_tracking_uri_falls_back_to_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert tracking.artifact_root(f"sqlite:///{tmp_path}/x/mlflow.db") == (
        (tmp_path / "x" / "mlartifacts").as_uri()
    )


# ---------------------------------------------------------------- the template


def test_template_normalizes_and_validates():
    t = RunTemplate.from_dict(
        {**TEMPLATE, "date": dt.date(2025, 3, 4), "metrics": "sharpe, hit_rate,", "notes": None}
    )
    assert t.date == "2025-03-04"
    assert t.metrics == ["sharpe", "hit_rate"]
    assert t.notes == "" and t.backtest_summary == ""

    with pytest.raises(ConfigError, match="unknown template field.*colour"):
        RunTemplate.from_dict({**TEMPLATE, "colour": "blue"})
    with pytest.raises(ConfigError, match="missing template field.*owner"):
        RunTemplate.from_dict({k: v for k, v in TEMPLATE.items() if k != "owner"})
    with pytest.raises(ConfigError, match="'date'"):
        RunTemplate.from_dict({**TEMPLATE, "date": "04/03/2025"})
    with pytest.raises(ConfigError, match="'objective'"):
        RunTemplate.from_dict({**TEMPLATE, "objective": "  "})
    with pytest.raises(ConfigError, match="'metrics'"):
        RunTemplate.from_dict({**TEMPLATE, "metrics": []})


def test_template_file_is_valid_and_complete():
    path = REPO / "experiments" / "template.yaml"
    raw = yaml.safe_load(path.read_text())
    assert list(raw) == [f.name for f in dataclasses.fields(RunTemplate)]
    t = RunTemplate.from_yaml(path)
    assert t.experiment_id == raw["experiment_id"]
    lines = path.read_text().splitlines()
    for field in raw:  # every field is explained by a comment right above it
        at = next(i for i, x in enumerate(lines) if x.startswith(f"{field}:"))
        assert lines[at - 1].startswith("# "), field


# ---------------------------------------------------------------- run metadata


def test_tracked_run_records_template_config_git_seeds_versions(store, monkeypatch):
    monkeypatch.chdir(REPO)
    config = {
        "data": {"symbol": "BTC/USDT", "timeframe": "1h"},
        "model": {"name": "logreg", "C": 0.5, "balanced": True},
        "features": ["rsi_14", "atr_14"],
        "horizon": 1,
    }
    template = RunTemplate.from_dict(TEMPLATE)
    with tracking.tracked_run(
        "meta",
        template,
        config=config,
        seeds={"numpy": 7, "torch": np.int64(8)},
        data_fingerprint="abc123",
        tags={"stage": "test"},
    ) as run:
        assert mlflow.active_run().info.run_id == run.info.run_id
    r = _run(run.info.run_id)
    tags, params = r.data.tags, r.data.params
    assert r.info.status == "FINISHED"
    assert r.info.run_name == "exp-test-001"

    for field, value in template.to_dict().items():
        expected = ", ".join(value) if field == "metrics" else value
        assert tags[f"template.{field}"] == expected
    assert params["template.owner"] == "ana" and params["template.dataset"] == TEMPLATE["dataset"]
    assert "template.metrics" not in params  # not scalar
    assert tags["mlflow.user"] == "ana"

    assert params["config.data.symbol"] == "BTC/USDT"
    assert params["config.model.C"] == "0.5"
    assert params["config.model.balanced"] == "true"
    assert params["config.features"] == '["rsi_14", "atr_14"]'
    assert params["config.horizon"] == "1"
    assert params["seed.numpy"] == "7" and params["seed.torch"] == "8"
    assert tags["data.fingerprint"] == "abc123" == params["data.fingerprint"]
    assert tags["stage"] == "test"

    head = _git("rev-parse", "HEAD")
    assert tags["git.commit"] == (head.strip() if head else "unknown")
    if head:
        assert tags["git.dirty"] == str(bool(_git("status", "--porcelain").strip())).lower()

    assert tags["version.python"] == platform.python_version()
    assert tags["version.numpy"] == np.__version__
    assert tags["version.pandas"] == pd.__version__
    assert tags["version.mlflow"] == mlflow.__version__
    assert tags["version.torch"] == metadata.version("torch")
    for name in ("scikit-learn", "xgboost", "pytorch-forecasting", "lightning", "ccxt", "ta"):
        assert tags[f"version.{name}"] != "not installed", name
    host = socket.gethostname()
    if len(host) >= 4:
        assert not any(host in v for v in (*tags.values(), *params.values()))

    client = MlflowClient()
    listed = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "run_metadata.json"} <= listed
    saved = mlflow.artifacts.load_text(f"{r.info.artifact_uri}/config.yaml")
    assert yaml.safe_load(saved) == config
    # artifacts live beside the store, never in the working directory
    assert Path(r.info.artifact_uri.removeprefix("file://")).is_relative_to(store.resolve())


def test_failed_run_is_marked_and_exception_propagates(store):
    with (
        pytest.raises(ValueError, match="boom"),
        tracking.tracked_run("meta", TEMPLATE, config={}, seeds={}, data_fingerprint="f") as run,
    ):
        raise ValueError("boom")
    r = _run(run.info.run_id)
    assert r.info.status == "FAILED"
    assert r.data.tags["error"] == "ValueError: boom"
    assert "error.txt" in {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert mlflow.active_run() is None


def test_nested_runs_link_to_parent_and_accept_pydantic_config(store):
    from pydantic import BaseModel

    class Trial(BaseModel):
        lr: float = 0.1
        layers: list[int] = [8, 4]

    with tracking.tracked_run("meta", TEMPLATE, config={}, seeds={}, data_fingerprint="f") as p:
        flat = tracking.tracked_run("meta", TEMPLATE, config={}, seeds={}, data_fingerprint="f")
        with pytest.raises(BadInputError, match="nested=True"), flat:
            pass
        with tracking.tracked_run(
            "meta", TEMPLATE, config=Trial(), seeds={}, data_fingerprint="f", nested=True
        ) as c:
            pass
        assert mlflow.active_run().info.run_id == p.info.run_id
    child = _run(c.info.run_id)
    assert child.data.tags["mlflow.parentRunId"] == p.info.run_id
    assert child.info.status == _run(p.info.run_id).info.status == "FINISHED"
    assert child.data.params["config.lr"] == "0.1"
    assert child.data.params["config.layers"] == "[8, 4]"
    saved = mlflow.artifacts.load_text(f"{child.info.artifact_uri}/config.yaml")
    assert yaml.safe_load(saved) == Trial().model_dump()


def test_git_commit_unknown_outside_git(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert tracking.git_info() == {"commit": "unknown", "dirty": "unknown"}
    with tracking.tracked_run("meta", TEMPLATE, config={}, seeds={}, data_fingerprint="f") as run:
        pass
    tags = _run(run.info.run_id).data.tags
    assert tags["git.commit"] == "unknown"
    assert "mlflow.source.git.commit" not in tags
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()


def test_bad_inputs_are_one_line_errors(store):
    bad_seed = tracking.tracked_run(
        "m", TEMPLATE, config={}, seeds={"np": 1.5}, data_fingerprint="f"
    )
    with pytest.raises(BadInputError, match="seed 'np'"), bad_seed:
        pass
    no_data = tracking.tracked_run("m", TEMPLATE, config={}, seeds={}, data_fingerprint="")
    with pytest.raises(BadInputError, match="data_fingerprint"), no_data:
        pass
    with pytest.raises(BadInputError, match="active run"):
        tracking.log_fold_metrics([{"a": 1.0}], {})
    with pytest.raises(BadInputError, match="active run"):
        tracking.log_model(LogisticRegression())
    assert mlflow.active_run() is None


# ---------------------------------------------------------------- metrics and artifacts


def test_fold_metrics_as_steps_columns_and_aggregate(store):
    nan = float("nan")
    per_fold = [{"acc": 0.5, "auc": nan}, {"acc": 0.6, "auc": 0.7}, {"acc": 0.7, "auc": 0.8}]
    aggregate = {"acc": float(np.mean([0.5, 0.6, 0.7])), "auc": nan}
    with tracking.tracked_run(
        "metrics", TEMPLATE, config={}, seeds={}, data_fingerprint="f"
    ) as run:
        tracking.log_fold_metrics(per_fold, aggregate, prefix="val")
    client, rid = MlflowClient(), run.info.run_id
    history = sorted((m.step, m.value) for m in client.get_metric_history(rid, "val.by_fold.acc"))
    assert history == [(0, 0.5), (1, 0.6), (2, 0.7)]
    auc = sorted((m.step, m.value) for m in client.get_metric_history(rid, "val.by_fold.auc"))
    assert auc == [(1, 0.7), (2, 0.8)]  # the NaN fold is skipped
    metrics = _run(rid).data.metrics
    assert metrics["val.fold1.auc"] == 0.7 and metrics["val.fold2.acc"] == 0.7
    assert "val.fold0.auc" not in metrics and "val.auc" not in metrics
    assert math.isclose(metrics["val.acc"], 0.6)


def test_dataframe_text_and_figure_artifacts(store, tmp_path):
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC", name="timestamp")
    df = pd.DataFrame({"close": [1.0, 2.0, 3.5, 4.25], "signal": [1, 0, -1, 1]}, index=idx)
    fig = tracking.plot_feature_importance(["a", "b", "c"], [0.2, 0.5, 0.3])
    with tracking.tracked_run(
        "artifacts", TEMPLATE, config={}, seeds={}, data_fingerprint="f"
    ) as run:
        tracking.log_dataframe(df, "tables/preds.parquet")
        tracking.log_dataframe(df, "preds.csv")
        tracking.log_text("hello", "notes/summary.md")
        tracking.log_figure(fig, "plots/importance.png")
        with pytest.raises(BadInputError, match=r"\.parquet or \.csv"):
            tracking.log_dataframe(df, "preds.xlsx")
    out = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path)))
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "tables" / "preds.parquet"), df, check_freq=False
    )
    back = pd.read_csv(out / "preds.csv", index_col="timestamp", parse_dates=True)
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy())
    assert (out / "notes" / "summary.md").read_text() == "hello"
    assert (out / "plots" / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- models and the registry


def test_model_logged_registered_and_loaded_by_alias_and_version(store):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["f0", "f1", "f2", "f3"])
    y = (X["f0"] + 0.5 * X["f1"] + rng.normal(scale=0.5, size=120) > 0).astype(int)
    first = LogisticRegression().fit(X, y)
    second = LogisticRegression(C=0.01).fit(X, y)
    with tracking.tracked_run("models", TEMPLATE, config={}, seeds={}, data_fingerprint="f"):
        uri = tracking.log_model(first, input_example=X.head(5))
        v1 = tracking.register_model(uri, "test-direction", alias="champion")
        tracking.log_model(second, "model_b", registered_name="test-direction")
    assert v1 == 1

    by_alias = tracking.load_model("test-direction", "champion")
    np.testing.assert_array_equal(by_alias.predict(X), first.predict_proba(X))
    latest = tracking.load_model("test-direction")
    np.testing.assert_array_equal(latest.predict(X), second.predict_proba(X))
    unwrapped = tracking.load_model("test-direction", version=1, unwrap=True)
    assert isinstance(unwrapped, LogisticRegression)
    np.testing.assert_array_equal(unwrapped.coef_, first.coef_)
    np.testing.assert_array_equal(
        tracking.load_model("test-direction", 2, unwrap=True).coef_, second.coef_
    )

    with pytest.raises(BadInputError, match="no registered model named 'nope'"):
        tracking.load_model("nope")
    with pytest.raises(BadInputError, match="alias 'missing'"):
        tracking.load_model("test-direction", "missing")

    # explicit requirements: torch pinned exactly (no local label, no loose spec)
    reqs_file = Path(mlflow.pyfunc.get_model_dependencies(uri))
    lines = [x.strip() for x in reqs_file.read_text().splitlines() if x.strip()]
    conda = yaml.safe_load((reqs_file.parent / "conda.yaml").read_text())
    pip_lines = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    for reqs in (lines, pip_lines):
        torch_lines = [x for x in reqs if _req_name(x) == "torch"]
        assert torch_lines == [_torch_pin()]
        assert "cloudpickle" in {_req_name(x) for x in reqs}
    assert _torch_pin() == "torch==2.13.0"


def test_model_requirements_pin_torch_and_drop_local_installs(tmp_path):
    (tmp_path / "extra.txt").write_text("pandas==3.0.6\ntorch\n")
    (tmp_path / "requirements.txt").write_text(
        "# pinned\n-e .\ntorch>=2.0  # loose on purpose\nnumpy==2.4.6\n-r extra.txt\n./vendored\n"
    )
    reqs = tracking.model_requirements(tmp_path / "requirements.txt")
    names = [_req_name(x) for x in reqs]
    assert [x for x in reqs if _req_name(x) == "torch"] == [_torch_pin()]
    assert "numpy==2.4.6" in reqs and "pandas==3.0.6" in reqs
    assert not any(x.startswith(("-e", "./")) for x in reqs)
    assert "cloudpickle" in names
    local = Version(metadata.version("torch")).local
    index = [x for x in reqs if x.startswith("--extra-index-url")]
    assert index == (
        [f"--extra-index-url https://download.pytorch.org/whl/{local}"] if local else []
    )

    builtin = tracking.model_requirements(tmp_path / "missing.txt")
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in builtin
    assert [x for x in builtin if _req_name(x) == "torch"] == [_torch_pin()]


# ---------------------------------------------------------------- reading runs back


def test_experiments_open_in_the_model_training_view(store):
    """Created with mlflow.experimentKind, and an existing experiment without it gets it."""
    with tracking.tracked_run("kind-new", TEMPLATE, config={}, seeds={}, data_fingerprint="f"):
        pass
    client = MlflowClient()
    created = client.get_experiment_by_name("kind-new")
    assert created.tags["mlflow.experimentKind"] == "custom_model_development"
    old_id = client.create_experiment("kind-old")  # as an older cryptoai (or a person) made it
    assert "mlflow.experimentKind" not in client.get_experiment(old_id).tags
    with tracking.tracked_run("kind-old", TEMPLATE, config={}, seeds={}, data_fingerprint="f"):
        pass
    assert client.get_experiment(old_id).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )
    client.set_experiment_tag(old_id, "mlflow.experimentKind", "genai_development")
    with tracking.tracked_run("kind-old", TEMPLATE, config={}, seeds={}, data_fingerprint="f"):
        pass
    assert client.get_experiment(old_id).tags["mlflow.experimentKind"] == "genai_development"


def test_config_params_share_one_key_scheme_across_config_kinds():
    from cryptoai.modeling.training import load_train_config
    from cryptoai.research.experiment_config import load_experiment

    logreg = load_experiment(REPO / "configs/experiments/logreg_baseline.yaml")
    xgb = load_experiment(REPO / "configs/experiments/xgboost.yaml")
    exp_params = tracking.config_params(logreg)
    # an experiment's dataset is logged as config.data, as training configs name it
    assert exp_params["config.data.symbol"] == "BTC/USDT"
    assert not any(k.startswith("config.dataset") for k in exp_params)
    assert exp_params["config.model.params.C"] == "0.1"
    assert exp_params["config.backtest.params.long_above"] == "0.52"
    assert "config.model.smoke_params" not in exp_params  # an empty mapping adds no key

    # two experiments: the same keys but for their models' own parameters
    def fixed(params: dict) -> set:
        return {k for k in params if ".params." not in k and "smoke_params" not in k}

    xgb_params = tracking.config_params(xgb)
    assert fixed(exp_params) - {"config.backtest.execution.size",
                                "config.backtest.execution.leverage"} == fixed(xgb_params)  # fmt: skip
    # a training config's sections carry the same keys as the experiment's
    train = tracking.config_params(load_train_config(REPO / "configs/models/logreg.yaml"))
    for section in ("config.data.", "config.target.", "config.validation.", "config.model.name"):
        mine = {k for k in exp_params if k.startswith(section)}
        assert mine and mine == {k for k in train if k.startswith(section)}, section
    assert exp_params["config.seed"] == "42" and "config.seed" in train
    with pytest.raises(BadInputError, match="mapping or a pydantic model"):
        tracking.config_params(["not", "a", "config"])


def test_logged_model_has_a_signature_and_no_progress_bars(store, monkeypatch, capfd, caplog):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    tracking.configure()
    import os

    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    caplog.set_level(logging.WARNING)
    capfd.readouterr()
    with tracking.tracked_run("signed", TEMPLATE, config={}, seeds={}, data_fingerprint="f"):
        uri = tracking.log_model(model, input_example=X.tail(5))
    info = mlflow.models.get_model_info(uri)
    assert info.signature.inputs.input_names() == ["a", "b", "c"]
    assert info.signature.outputs is not None
    err = capfd.readouterr().err
    assert "without a signature" not in err and "Downloading artifacts" not in err
    assert not [r for r in caplog.records if "without a signature" in r.getMessage()]
    with (
        tracking.tracked_run("signed", TEMPLATE, config={}, seeds={}, data_fingerprint="f"),
        pytest.raises(BadInputError, match="cannot predict on the input example"),
    ):
        tracking.log_model(model, input_example=X[["a"]].tail(5))
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    tracking.configure()  # a user's own choice is kept
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"


def test_runs_table_lists_runs_with_template_and_key_metrics(store):
    with tracking.tracked_run("table", TEMPLATE, config={}, seeds={}, data_fingerprint="fp1") as ok:
        tracking.log_fold_metrics([{"acc": 0.5}, {"acc": 0.7}], {"acc": 0.6})
    with (
        pytest.raises(RuntimeError),
        tracking.tracked_run("table", TEMPLATE, config={}, seeds={}, data_fingerprint="fp2") as bad,
    ):
        raise RuntimeError("no data")
    table = tracking.runs_table("table")
    assert len(table) == 2
    assert table["start_time"].is_monotonic_decreasing
    rows = table.set_index("run_id")
    assert rows.loc[ok.info.run_id, "status"] == "FINISHED"
    assert rows.loc[bad.info.run_id, "status"] == "FAILED"
    assert rows.loc[ok.info.run_id, "acc"] == 0.6
    assert pd.isna(rows.loc[bad.info.run_id, "acc"])
    assert (table["owner"] == "ana").all() and (table["metrics"] == "accuracy, log_loss").all()
    assert set(table["data_fingerprint"]) == {"fp1", "fp2"}
    assert not any(c.startswith(("fold", "by_fold")) for c in table.columns)
    with pytest.raises(BadInputError, match="no MLflow experiment named 'absent'"):
        tracking.runs_table("absent")


# ---------------------------------------------------------------- plots


def test_feature_importance_plot_shows_top_bars_in_order():
    rng = np.random.default_rng(1)
    names = [f"f{i}" for i in range(30)]
    values = rng.normal(size=30)
    ax = tracking.plot_feature_importance(names, values, top=20).axes[0]
    assert len(ax.patches) == 20
    expected = sorted(zip(names, values, strict=True), key=lambda nv: -abs(nv[1]))[:20]
    ticks = sorted(
        zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True),
        reverse=True,
    )
    assert [label for _, label in ticks] == [n for n, _ in expected]  # largest on top
    widths = sorted((p.get_width() for p in ax.patches), key=abs, reverse=True)
    np.testing.assert_allclose(widths, [v for _, v in expected])

    assert len(tracking.plot_feature_importance(names[:5], values[:5]).axes[0].patches) == 5
    with pytest.raises(BadInputError, match="3 names but 2 importances"):
        tracking.plot_feature_importance(["a", "b", "c"], [1.0, 2.0])


def test_confusion_matrix_plot_counts_every_cell():
    y_true = ["up", "down", "flat", "up", "up", "down", "flat", "flat", "up"]
    y_pred = ["up", "up", "flat", "down", "up", "down", "up", "flat", "up"]
    ax = tracking.plot_confusion_matrix(y_true, y_pred).axes[0]
    labels = sorted(set(y_true))
    counts = np.zeros((3, 3), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        counts[labels.index(t), labels.index(p)] += 1
    assert len(ax.texts) == 9
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), counts)
    np.testing.assert_array_equal([int(t.get_text()) for t in ax.texts], counts.ravel())


def test_calibration_plot_matches_naive_binning():
    rng = np.random.default_rng(2)
    proba = rng.uniform(size=400)
    y = (rng.uniform(size=400) < proba).astype(int)
    fig = tracking.plot_calibration(y, np.column_stack([1 - proba, proba]), n_bins=5)
    curve_ax, hist_ax = fig.axes
    assert len(hist_ax.patches) == 5
    assert sum(p.get_height() for p in hist_ax.patches) == 400
    line = next(x for x in curve_ax.get_lines() if x.get_label() == "model")
    bins = np.minimum((proba * 5).astype(int), 4)
    mean_pred = [proba[bins == b].mean() for b in range(5) if (bins == b).any()]
    frac_pos = [y[bins == b].mean() for b in range(5) if (bins == b).any()]
    np.testing.assert_allclose(line.get_xdata(), mean_pred)
    np.testing.assert_allclose(line.get_ydata(), frac_pos)
    with pytest.raises(BadInputError, match=r"\[0, 1\]"):
        tracking.plot_calibration([0, 1], [0.5, 1.5])
