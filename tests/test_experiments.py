"""The experiment runner end to end: real papermill kernels, a real SQLite MLflow store.

Two batches: the shipped logreg baseline through the shipped notebooks (smoke mode), run
once per session by ``shipped_run`` (tests/shipped_run.py; test_notebooks.py checks the same
run's notebook outputs), and, once per module, two small configs over tiny generated
notebooks, one of which raises, run two at a time. Everything lands in temp folders and temp
MLflow stores (one per batch); the repository is not written to. The runners' clock is fixed
(``RUN_DAY``), so no assertion races midnight.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import mlflow
import nbformat
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from shipped_run import END, RUN_DAY, START, ShippedRun
from shipped_run import STUDY as STUDY_REAL

from cryptoai import tracking
from cryptoai.cli import main
from cryptoai.errors import BadInputError, ConfigError
from cryptoai.fingerprint import frame_fingerprint
from cryptoai.modeling.training import load_training_data
from cryptoai.research import experiments
from cryptoai.research.experiment_config import load_experiment
from cryptoai.research.experiments import (
    _KernelLog,
    _relink,
    claim_folder,
    expand_config_paths,
    flatten_metrics,
    run_batch,
)

pytest_plugins = ("shipped_run",)  # the one run of the shipped notebooks

REPO = Path(__file__).resolve().parents[1]
STUDY_TINY = "test-tiny"
# The runners' "today" is RUN_DAY (from shipped_run), a fixed day, so folder names and
# template dates are known in advance (a real clock read twice could straddle midnight).

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """Temp MLflow store, raw store and experiments root of this module's tiny batches.

    The batches run while the module fixture's store is set; tests read that store through
    ``env["uri"]`` (each test's own environment points at a private, empty store; the shipped
    run has a store of its own, ``real["uri"]``).
    """
    root = tmp_path_factory.mktemp("exp")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv(tracking.ARTIFACT_ROOT_ENV, raising=False)
        mp.setattr(experiments, "today", lambda: RUN_DAY)
        yield {"root": root, "store": root / "raw", "experiments": root / "experiments", "uri": uri}
    mlflow.set_tracking_uri(None)


def _point_at(monkeypatch: pytest.MonkeyPatch, uri: str) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture
def batch_store(env, monkeypatch):
    """This test sees the tiny batches' store (e.g. for ``cryptoai report``)."""
    return _point_at(monkeypatch, env["uri"])


@pytest.fixture
def real_store(real, monkeypatch):
    """This test sees the shipped run's store."""
    return _point_at(monkeypatch, real["uri"])


def _run_cli(env, args: list[str]) -> int:
    """``main(args)`` against the module's store and clock; the log records it printed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", env["uri"])
        mp.setattr(experiments, "today", lambda: RUN_DAY)
        mlflow.set_tracking_uri(env["uri"])
        try:
            return main(args)
        finally:
            mlflow.set_tracking_uri(None)


def _config(env, source: Path, dest: str, **changes) -> Path:
    """A copy of a config with its raw store in the temp folder (and other fields changed)."""
    data = yaml.safe_load(source.read_text())
    data["dataset"]["store_root"] = str(env["store"])
    data.update(changes)
    path = env["root"] / dest
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def real(shipped_run: ShippedRun) -> dict:
    """The shipped logreg baseline through the shipped notebooks, in smoke mode, via the CLI:
    the session's one run (tests/shipped_run.py), its notebooks the ones its config lists."""
    return {
        "rc": shipped_run.rc,
        "config": shipped_run.config,
        "folder": shipped_run.folder,
        "records": shipped_run.records,
        "uri": shipped_run.uri,
        "notebooks": shipped_run.notebooks,
    }


def _tiny_notebooks(folder: Path) -> Path:
    """03 trains the config's model (smoke) and saves metrics; 04 writes a fake report; 05 raises."""
    folder.mkdir(parents=True, exist_ok=True)
    params = 'config_path = None\nseed = 42\nsmoke = False\noutput_dir = "scratch"'
    bodies = {
        "03-model-prototyping": (
            "from cryptoai.research.experiment_config import load_experiment\n"
            "from cryptoai.research.notebook import NotebookOutputs\n"
            "from cryptoai.modeling.training import train\n"
            "cfg = load_experiment(config_path)\n"
            "res = train(cfg.train_config(smoke=smoke), tracking=False, progress=False)\n"
            "out = NotebookOutputs(output_dir, '03-model-prototyping')\n"
            "out.metrics(res.aggregate)\n"
            "res.predictions.to_parquet(out.dir / 'predictions.parquet')\n"
        ),
        "04-backtesting": (
            "import json\n"
            "import matplotlib\n"
            "matplotlib.use('Agg')\n"
            "import matplotlib.pyplot as plt\n"
            "from cryptoai.research.notebook import NotebookOutputs\n"
            "out = NotebookOutputs(output_dir, '04-backtesting')\n"
            "fig, ax = plt.subplots()\n"
            "ax.plot([1, 2, 3])\n"
            "out.figure(fig, 'equity')\n"
            "(out.dir / 'metrics.json').write_text(json.dumps({'sharpe': 1.25, 'total_return': "
            "0.1, 'max_drawdown': -0.2, 'n_trades': 3, 'note': 'text', 'bad': None, "
            "'benchmark': {'sharpe': 0.5, 'total_return': 0.05, 'max_drawdown': -0.3}}))\n"
            "out.text('# Report\\n![Equity](equity.png)\\n[notes](../../notes.md)\\n', "
            "'backtest_report.md')\n"
        ),
        "05-fails": "raise ValueError('deliberate failure for the test')\n",
    }
    for name, body in bodies.items():
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [cell, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


@pytest.fixture(scope="module")
def tiny(env):
    """Two configs two at a time: one succeeds, one has a notebook that raises."""
    nb_dir = _tiny_notebooks(env["root"] / "tiny_notebooks")
    base = dict(
        study=STUDY_TINY,
        features=str(REPO / "configs/features/default.yaml"),  # the tiny notebooks run in tmp
        dataset={"source": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h",
                 "start": "2024-10-01", "end": "2025-01-01", "store_root": str(env["store"])},
    )  # fmt: skip
    ok = _config(env, REPO / "configs/experiments/logreg_baseline.yaml", "tiny_ok.yaml",
                 name="tiny_ok", notebooks=["03-model-prototyping", "04-backtesting"], **base)  # fmt: skip
    bad = _config(env, REPO / "configs/experiments/logreg_baseline.yaml", "tiny_bad.yaml",
                  name="tiny_bad", experiment_id="EXP-BAD",
                  notebooks=["03-model-prototyping", "05-fails", "04-backtesting"], **base)  # fmt: skip
    args = ["run", str(bad), str(ok), "--smoke", "--jobs", "2", "--no-progress",
            "--experiments-root", str(env["experiments"]), "--notebooks-dir", str(nb_dir)]  # fmt: skip
    rc = _run_cli(env, args)
    folders = {p.name.split("_", 2)[2]: p for p in env["experiments"].glob("experiment_*_tiny_*")}
    return {"rc": rc, "ok": folders["tiny_ok"], "bad": folders["tiny_bad"], "notebooks": nb_dir,
            "uri": env["uri"]}  # fmt: skip


def _client(batch: dict) -> MlflowClient:
    """The MLflow store a batch (``real`` or ``tiny``) logged to, by its explicit URI."""
    return MlflowClient(tracking_uri=batch["uri"])


def _runs(batch: dict, study: str) -> list:
    client = _client(batch)
    exp = client.get_experiment_by_name(study)
    return client.search_runs([exp.experiment_id], max_results=1000)


def _parent(batch: dict, study: str, name: str):
    runs = [r for r in _runs(batch, study) if r.data.tags.get("experiment.name") == name]
    assert len(runs) == 1
    return runs[0]


def _children(batch: dict, study: str, parent_id: str) -> dict:
    return {
        r.data.tags["mlflow.runName"]: r
        for r in _runs(batch, study)
        if r.data.tags.get("mlflow.parentRunId") == parent_id
    }


def _leaves(data: dict, prefix: str = "") -> dict[str, object]:
    """Every leaf of a nested mapping as ``a.b`` (written here, apart from the runner's code)."""
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and value == value and abs(value) != float("inf")


# --------------------------------------------------------------------------- real batch


def test_real_batch_succeeds(real):
    assert real["rc"] == 0


def test_real_folder_contents(real):
    folder = real["folder"]
    assert folder.name == "experiment_20310517_logreg_baseline"
    for name in real["notebooks"]:
        executed = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        codes = [c for c in executed.cells if c.cell_type == "code"]
        assert codes and all(c.execution_count is not None for c in codes), name
        injected = [c for c in codes if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "smoke = True" in injected[0].source
        assert (folder / name / "metrics.json").is_file(), name
    saved = load_experiment(folder / "config.yaml")
    shipped = load_experiment(real["config"])
    assert saved.date == RUN_DAY
    assert saved.model_copy(update={"date": None}) == shipped
    report = (folder / "backtest_report.md").read_text()
    assert "buy and hold" in report.lower()
    for link in ("equity.png", "drawdown.png"):
        assert f"({link})" in report and (folder / link).is_file()
    predictions = pd.read_parquet(folder / "03-model-prototyping" / "predictions.parquet")
    assert len(predictions) > 0 and isinstance(predictions.index, pd.DatetimeIndex)


def test_real_metrics_json_matches_nested_runs(real):
    folder = real["folder"]
    merged = json.loads((folder / "metrics.json").read_text())
    parent = _parent(real, STUDY_REAL, "logreg_baseline")
    children = _children(real, STUDY_REAL, parent.info.run_id)
    assert list(children) and set(children) == set(real["notebooks"])
    own = {n: json.loads((folder / n / "metrics.json").read_text()) for n in real["notebooks"]}
    for name, child in children.items():
        assert child.info.status == "FINISHED"
        numbers = {k: float(v) for k, v in _leaves(own[name]).items() if _is_number(v)}
        assert numbers and child.data.metrics == numbers, name
    assert parent.data.metrics == merged
    # Headline names, spelled out here, hold the notebooks' own numbers.
    model, backtest = own["03-model-prototyping"], own["04-backtesting"]
    assert merged["model.balanced_accuracy"] == model["balanced_accuracy"]
    assert merged["model.roc_auc"] == model["roc_auc"]
    assert merged["model.log_loss"] == model["log_loss"]
    assert merged["model.baseline.balanced_accuracy"] == model["baseline.balanced_accuracy"]
    assert merged["backtest.sharpe"] == backtest["sharpe"]
    assert merged["backtest.total_return"] == backtest["total_return"]
    assert merged["backtest.max_drawdown"] == backtest["max_drawdown"]
    assert merged["backtest.benchmark.sharpe"] == backtest["benchmark"]["sharpe"]
    # Every other number is a diagnostic under nb.NOTEBOOK., and nothing is lost or doubled.
    diagnostics = {k for k in merged if k.startswith("nb.")}
    headline = set(merged) - diagnostics
    assert all(k.startswith(("model.", "backtest.")) for k in headline)
    n_numbers = sum(_is_number(v) for n in own for v in _leaves(own[n]).values())
    assert len(merged) == n_numbers
    assert merged["nb.03-model-prototyping.n_folds"] == model["n_folds"]
    assert merged["nb.04-backtesting.predictions_from_03"] == 1.0
    assert any(k.startswith("nb.01-data-exploration.") for k in diagnostics)
    assert any(k.startswith("nb.02-feature-engineering.") for k in diagnostics)
    # MLflow lists metric columns by name: every headline metric before every diagnostic.
    ordered = sorted(merged)
    assert max(ordered.index(k) for k in headline) < min(ordered.index(k) for k in diagnostics)


def test_real_run_logs_the_final_model(real):
    parent = _parent(real, STUDY_REAL, "logreg_baseline")
    uri = parent.data.tags["model.uri"]
    mlflow.set_tracking_uri(real["uri"])
    try:
        info = mlflow.models.get_model_info(uri)
        model = mlflow.pyfunc.load_model(uri)
    finally:
        mlflow.set_tracking_uri(None)
    assert info.signature is not None and info.signature.inputs.input_names()
    assert info.run_id == parent.info.run_id
    cfg = load_experiment(real["config"]).train_config(smoke=True)
    frame = load_training_data(cfg.data).iloc[-cfg.smoke_bars :]
    from cryptoai.modeling.training import build_dataset

    X, _, _ = build_dataset(frame, cfg)
    proba = model.predict(X.tail(20))
    assert proba.shape == (20, 2) and ((proba >= 0) & (proba <= 1)).all()


def test_real_run_says_nothing_alarming(real):
    """A successful run logs no warning, and each notebook's start and finish with its time."""
    records = real["records"]
    loud = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert loud == []
    messages = [r.getMessage() for r in records if r.levelno == logging.INFO]
    for name in real["notebooks"]:
        assert f"logreg_baseline: {name} started" in messages
        assert any(m.startswith(f"logreg_baseline: {name} done in ") for m in messages)
    assert any("final model logged" in m for m in messages)
    assert all(messages.count(m) == 1 for m in messages if m.endswith(" started"))


def test_real_run_records_template_and_provenance(real):
    parent = _parent(real, STUDY_REAL, "logreg_baseline")
    tags = parent.data.tags
    cfg = load_experiment(real["config"])
    assert parent.info.status == "FINISHED"
    assert tags["mlflow.runName"] == "EXP-001 logreg_baseline"
    assert tags["template.experiment_id"] == "EXP-001"
    assert tags["template.owner"] == cfg.owner
    assert tags["template.objective"] == cfg.objective
    assert tags["template.date"] == "2031-05-17"
    assert tags["template.config_file"] == str(real["config"])
    # the config's period, first to last bar (END is exclusive: the day before it)
    last = (dt.date.fromisoformat(END) - dt.timedelta(days=1)).isoformat()
    assert tags["template.dataset"].startswith(f"synthetic BTC/USDT 1h {START}..{last}")
    assert "buy-and-hold" in tags["template.backtest_summary"]
    assert tags["smoke"] == "true" and tags["experiment.folder"] == str(real["folder"])
    assert tags["git.commit"] and tags["version.mlflow"] == mlflow.__version__
    # The fingerprint is the loaded data's, computed independently here.
    frame = load_training_data(cfg.dataset)
    assert tags["data.fingerprint"] == frame_fingerprint(frame)
    params = parent.data.params
    assert params["seed.global"] == "42"
    assert params["config.model.name"] == "logreg"
    assert params["config.model.params.C"] == "0.1"
    # the dataset is logged as config.data, the key `cryptoai train` runs use
    assert params["config.data.symbol"] == "BTC/USDT" and "config.dataset.symbol" not in params
    assert params["config.backtest.execution.size"] == "all_in"
    artifacts = {a.path for a in _client(real).list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "metrics.json", "backtest_report.md", "equity.png"} <= artifacts
    experiment = _client(real).get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    child = _children(real, STUDY_REAL, parent.info.run_id)["04-backtesting"]
    child_artifacts = {a.path for a in _client(real).list_artifacts(child.info.run_id)}
    assert {"04-backtesting.ipynb", "04-backtesting"} <= child_artifacts
    assert child.data.tags["template.experiment_id"] == "EXP-001"
    assert child.data.tags["smoke"] == "true" and child.data.tags["notebook"] == "04-backtesting"


def test_report_prints_the_study(real, real_store, capsys):
    capsys.readouterr()
    assert main(["report", "--study", STUDY_REAL]) in (0, None)
    out = capsys.readouterr().out
    assert "EXP-001 logreg_baseline" in out and "FINISHED" in out
    assert "backtest.sharpe" in out and "model.balanced_accuracy" in out
    header, row = out.splitlines()[:2]
    assert " status smoke " in header and " FINISHED   yes " in row  # a smoke run, marked
    assert "04-backtesting" not in out  # nested runs only with --all
    main(["report", "--study", STUDY_REAL, "--all"])
    assert "04-backtesting" in capsys.readouterr().out


def test_report_unknown_study_is_one_line(env, capsys):
    assert main(["report", "--study", "no-such-study"]) != 0
    err = capsys.readouterr().err.strip()
    assert "no-such-study" in err and "\n" not in err


# --------------------------------------------------------------------------- failures


def test_failing_notebook_fails_its_config_only(tiny):
    assert tiny["rc"] == 1
    parent = _parent(tiny, STUDY_TINY, "tiny_bad")
    assert parent.info.status == "FAILED"
    error = parent.data.tags["error"]
    assert "05-fails" in error and "ValueError: deliberate failure for the test" in error
    assert "In [" in error  # the cell
    children = _children(tiny, STUDY_TINY, parent.info.run_id)
    assert set(children) == {"03-model-prototyping", "05-fails"}  # 04 skipped
    assert children["05-fails"].info.status == "FAILED"
    assert "deliberate failure" in children["05-fails"].data.tags["error"]
    assert children["03-model-prototyping"].info.status == "FINISHED"
    executed = nbformat.read(tiny["bad"] / "05-fails.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells for o in c.get("outputs", []))
    assert not (tiny["bad"] / "04-backtesting.ipynb").exists()


def test_other_config_in_the_batch_succeeds(tiny):
    parent = _parent(tiny, STUDY_TINY, "tiny_ok")
    assert parent.info.status == "FINISHED" and "error" not in parent.data.tags
    folder = tiny["ok"]
    merged = json.loads((folder / "metrics.json").read_text())
    assert merged["backtest.sharpe"] == 1.25 and merged["backtest.n_trades"] == 3.0
    assert "backtest.note" not in merged and "backtest.bad" not in merged
    assert parent.data.metrics == merged
    assert parent.data.tags["template.backtest_summary"] == (
        "model_signal: Sharpe 1.25 vs 0.50 buy-and-hold; total return 10.0% vs 5.0% buy-and-hold;"
        " max drawdown -20.0% vs -30.0% buy-and-hold; net of 10 bps fees + 2 bps slippage"
    )
    report = (folder / "backtest_report.md").read_text()
    assert "![Equity](equity.png)" in report and (folder / "equity.png").is_file()
    assert "[notes](../notes.md)" in report  # relative link moved up one folder


def test_parallel_runs_are_deterministic(tiny):
    """Same config and seed in two kernels at once: identical model metrics and predictions."""
    ok = json.loads((tiny["ok"] / "03-model-prototyping" / "metrics.json").read_text())
    bad = json.loads((tiny["bad"] / "03-model-prototyping" / "metrics.json").read_text())
    assert ok and ok == bad
    a = pd.read_parquet(tiny["ok"] / "03-model-prototyping" / "predictions.parquet")
    b = pd.read_parquet(tiny["bad"] / "03-model-prototyping" / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_broken_config_stops_the_batch_before_anything_runs(tiny, env, tmp_path):
    good = env["root"] / "tiny_ok.yaml"
    data = yaml.safe_load(good.read_text())
    data["model"]["name"] = "no_such_model"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    root = tmp_path / "experiments"
    with pytest.raises(ConfigError, match=rf"{broken}: field 'model': unknown model"):
        run_batch([good, broken], experiments_root=root, notebooks_dir=tiny["notebooks"])
    assert not root.exists()  # no folder claimed, nothing ran
    data["model"]["name"] = "logreg"
    data["notebooks"] = ["03-model-prototyping", "07-missing"]
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"{broken}: field 'notebooks': 07-missing not found"):
        run_batch([broken], experiments_root=root, notebooks_dir=tiny["notebooks"])
    data["notebooks"] = ["03-model-prototyping"]
    data["backtest"]["strategy"] = "no_such_strategy"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"field 'backtest.strategy': unknown strategy"):
        run_batch([broken], experiments_root=root, notebooks_dir=tiny["notebooks"])
    assert not root.exists()


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"model": {"name": "logreg", "params": {"C": 0.1, "depth": 3}}}, "model",
         "unknown parameter.*depth"),
        ({"model": {"name": "logreg", "smoke_params": {"depth": 3}}}, "model",
         "unknown parameter.*depth"),
        ({"features": "configs/features/missing.yaml"}, "features", "not found"),
        ({"backtest": {"strategy": "model_signal", "params": {"long_above": 0.6, "upper": 1}}},
         "backtest.params", "has no parameter upper"),
        ({"validation": {"n_splits": 3, "purge": 0}, "target": {"kind": "direction",
          "horizon": 4}}, "validation.purge", "less than the target horizon"),
    ],
)  # fmt: skip
def test_whole_config_is_checked_before_any_data(env, tiny, tmp_path, change, field, reason):
    data = yaml.safe_load((env["root"] / "tiny_ok.yaml").read_text())
    data["dataset"]["store_root"] = str(tmp_path / "raw")  # would be created by a fetch
    data.update(change)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        run_batch([broken], experiments_root=tmp_path / "experiments",
                  notebooks_dir=tiny["notebooks"])  # fmt: skip
    message = str(caught.value)
    assert message.startswith(f"{broken}: field '{field}': ") and "\n" not in message
    assert __import__("re").search(reason, message), message
    assert not (tmp_path / "raw").exists() and not (tmp_path / "experiments").exists()


def test_copied_config_is_warned_about(env, tiny, batch_store, tmp_path, caplog):
    """A copy that keeps name and experiment_id: warned about against past runs and the batch."""
    original = env["root"] / "tiny_ok.yaml"  # ran in the tiny batch, so a past run has it
    copy = tmp_path / "tiny_ok_copy.yaml"
    copy.write_text(original.read_text())
    root = REPO  # what run_batch passes: paths are recorded relative to the repository
    caplog.set_level(logging.WARNING, logger="cryptoai")
    configs = [(p, load_experiment(p)) for p in (original, copy)]
    experiments._warn_about_copies(configs[:1], root)
    assert caplog.records == []  # the original itself is not a copy
    experiments._warn_about_copies(configs[1:], root)
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(f"{copy} has the name 'tiny_ok' and experiment_id 'EXP-001' of ")
    assert str(original) in message and "own name and experiment_id" in message
    caplog.clear()
    renamed = yaml.safe_load(copy.read_text()) | {"name": "tiny_renamed", "experiment_id": "X-9"}
    copy.write_text(yaml.safe_dump(renamed))
    twin = tmp_path / "twin.yaml"
    twin.write_text(yaml.safe_dump(renamed))
    experiments._warn_about_copies([(p, load_experiment(p)) for p in (copy, twin)], root)
    (record,) = caplog.records  # two new configs of one batch share their ids
    assert record.getMessage().startswith(f"{twin} has the name 'tiny_renamed' and ")
    assert str(copy) in record.getMessage()


def test_kernel_output_becomes_log_lines(caplog):
    caplog.set_level(logging.DEBUG, logger="cryptoai")
    stream = _KernelLog("demo 03-model-prototyping", logging.INFO)
    stream.write("fold 1/2\nfold 2")
    stream.write("/2\nepoch:  50%|#  | 1/2\repoch: 100%|##| 2/2\x1b[A\n")
    stream.write("WARNING cryptoai.x: careful\n\npartial")
    stream.close()
    got = [(r.levelno, r.getMessage()) for r in caplog.records]
    prefix = "demo 03-model-prototyping: "
    assert got == [
        (logging.INFO, prefix + "fold 1/2"),
        (logging.INFO, prefix + "fold 2/2"),
        (logging.INFO, prefix + "epoch: 100%|##| 2/2"),  # a redrawn bar: its last state
        (logging.WARNING, prefix + "WARNING cryptoai.x: careful"),
        (logging.INFO, prefix + "partial"),
    ]


def test_progress_printed_line_by_line_is_logged_without_its_start_and_once_done(
    caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG, logger="cryptoai")
    now = [1000.0]
    monkeypatch.setattr(experiments.time, "monotonic", lambda: now[0])
    stream = _KernelLog("demo 03", logging.INFO)
    stream.write("folds:   0%|          | 0/4\n")  # the start says nothing: left out
    stream.write("folds:  25%|##        | 1/4\n")  # the first news: logged
    now[0] += 1.0
    stream.write("folds:  50%|#####     | 2/4\n")  # a second later: too soon, left out
    now[0] += 30.0
    stream.write("folds:  75%|#######   | 3/4\n")  # half a minute later: logged
    now[0] += 1.0
    stream.write("folds: 100%|##########| 4/4\n")  # the end: always logged
    stream.close()
    got = [r.getMessage().split(": ", 1)[1] for r in caplog.records]
    assert got == [
        "folds:  25%|##        | 1/4",
        "folds:  75%|#######   | 3/4",
        "folds: 100%|##########| 4/4",
    ]


def test_cli_errors_are_one_line(env, tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.yaml not found" in err and "\n" not in err


# --------------------------------------------------------------------------- units


def test_flatten_metrics():
    data = {"a": 1, "b": {"c": 2.5, "d": None, "e": float("nan")}, "f": True, "g": "x",
            "h": float("inf"), "i (j)": 3}  # fmt: skip
    assert flatten_metrics(data) == {"a": 1.0, "b.c": 2.5, "i _j_": 3.0}
    assert flatten_metrics({"x": 1}, "model.") == {"model.x": 1.0}


def test_claim_folder_suffixes(tmp_path):
    day = dt.date(2025, 1, 31)
    first = claim_folder(tmp_path, "demo", day)
    second = claim_folder(tmp_path, "demo", day)
    third = claim_folder(tmp_path, "demo", day)
    assert [p.name for p in (first, second, third)] == [
        "experiment_20250131_demo",
        "experiment_20250131_demo_2",
        "experiment_20250131_demo_3",
    ]
    assert all(p.is_dir() for p in (first, second, third))


def test_relink(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.png").write_text("")
    text = "![a](a.png) [d](../docs/x.md) [w](https://x.org/a) [h](#top)"
    assert _relink(text, tmp_path / "sub", tmp_path) == (
        "![a](a.png) [d](docs/x.md) [w](https://x.org/a) [h](#top)"
    )


def test_expand_config_paths(tmp_path):
    for name in ("b.yaml", "a.yaml"):
        (tmp_path / name).write_text("")
    assert expand_config_paths([str(tmp_path / "*.yaml")]) == [
        tmp_path / "a.yaml",
        tmp_path / "b.yaml",
    ]
    with pytest.raises(BadInputError, match="no config matches"):
        expand_config_paths([str(tmp_path / "*.yml")])
    with pytest.raises(BadInputError, match="no experiment config"):
        expand_config_paths([])
    with pytest.raises(BadInputError, match="jobs"):
        run_batch([tmp_path / "a.yaml"], jobs=0)
