"""The model registry: what a registered version carries (card tags), list, promote, and the
``cryptoai models`` / ``cryptoai train --register`` commands on a real MLflow store."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from mlflow.tracking import MlflowClient
from serve_support import MINIMAL_SPEC, NAME, WARMUP, train_config

import cryptoai
from cryptoai.cli import main
from cryptoai.features.spec import load_feature_spec
from cryptoai.fingerprint import frame_fingerprint
from cryptoai.paths import repo_root
from cryptoai.tracking.registry import list_models, model_card_of, promote

pytest_plugins = ("serve_support",)  # the shared registered model


def _git(*args: str) -> str | None:
    done = subprocess.run(
        ["git", *args], cwd=repo_root(), capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def _is_a_commit_of_this_repo(commit: str) -> bool:
    """A full 40-hex commit id that this repository holds. Not "== HEAD": commits may land
    while the tests run, so HEAD read here can be newer than the one the training read."""
    if re.fullmatch(r"[0-9a-f]{40}", commit) is None:
        return False
    known = _git("rev-list", "--all")
    return known is not None and commit in known.split()


def test_a_registered_version_carries_what_it_needs_to_predict(registry):
    tags = MlflowClient().get_model_version(NAME, "1").tags
    spec = load_feature_spec(MINIMAL_SPEC).model_dump(mode="json")
    assert json.loads(tags["cryptoai.feature_spec"]) == spec  # the spec itself, not a path
    assert tags["cryptoai.target_kind"] == "direction"
    assert tags["cryptoai.horizon"] == "1"
    assert tags["cryptoai.label"] == "proba_up"
    assert json.loads(tags["cryptoai.outputs"]) == ["proba_up", "score"]
    assert tags["cryptoai.warmup_bars"] == str(WARMUP)
    assert tags["cryptoai.data_fingerprint"] == frame_fingerprint(registry.ohlcv)
    if _git("rev-parse", "HEAD") is not None:  # in a git checkout (else the card says so)
        assert _is_a_commit_of_this_repo(tags["cryptoai.git_commit"]), tags["cryptoai.git_commit"]
    assert tags["cryptoai.package_version"] == cryptoai.__version__
    card = model_card_of(f"models:/{NAME}/1")
    assert card["feature_spec"] == spec and card["warmup_bars"] == WARMUP
    assert card["classes"] == [0.0, 1.0] and card["timeframe"] == "1h"


def test_list_and_promote(registry):
    table = list_models(NAME)
    assert table[["version", "aliases", "label", "warmup_bars"]].values.tolist() == [
        [1, "champion", "proba_up", str(WARMUP)],
        [2, "", "proba_up", str(WARMUP)],
    ]
    promote(NAME, 2, "champion")
    promote(NAME, 1, "challenger")
    table = list_models(NAME)
    assert table["aliases"].tolist() == ["challenger", "champion"]
    assert str(MlflowClient().get_model_version_by_alias(NAME, "champion").version) == "2"
    MlflowClient().delete_registered_model_alias(NAME, "challenger")


def test_models_commands(registry, capsys):
    run_id = registry.result.run_id
    assert (
        main(["models", "register", "--run", run_id, "--name", "cli-model", "--alias", "prod"]) == 0
    )
    assert "cli-model version 1 as cli-model@prod" in capsys.readouterr().out
    assert main(["models", "register", "--run", run_id, "--name", "cli-model"]) == 0
    assert main(["models", "promote", "cli-model", "--version", "2", "--alias", "prod"]) == 0
    assert "cli-model@prod -> version 2" in capsys.readouterr().out
    assert str(MlflowClient().get_model_version_by_alias("cli-model", "prod").version) == "2"
    assert main(["models", "list", "cli-model"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["name", "version", "aliases", "label"]
    assert [line.split()[:3] for line in out[1:]] == [
        ["cli-model", "1", "proba_up"],
        ["cli-model", "2", "prod"],
    ]
    # bad input: one line, non-zero, nothing changed
    assert main(["models", "promote", "cli-model", "--version", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "version 7" in err[0]
    assert main(["models", "register", "--run", "0" * 32, "--name", "x"]) == 2
    assert "no MLflow run" in capsys.readouterr().err


@pytest.mark.slow
def test_train_register_flag_registers_the_final_refit(tmp_path, capsys):
    cfg = train_config(tmp_path / "raw", tmp_path / "runs", name="cli-register")
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert main(["train", "--config", str(path), "--no-progress", "--register", "fresh"]) == 0
    out = capsys.readouterr().out
    assert "registered fresh version 1" in out
    version = MlflowClient().get_model_version("fresh", "1")
    run_id = out.split("MLflow run ")[1].split()[0]
    assert version.run_id == run_id
    assert version.tags["cryptoai.label"] == "proba_up"
    assert main(["train", "--config", str(path), "--no-tracking", "--register", "x"]) == 2
    assert "--register needs a tracked run" in capsys.readouterr().err
