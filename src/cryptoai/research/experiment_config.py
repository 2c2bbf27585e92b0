"""Experiment configs (``configs/experiments/NAME.yaml``): one research question, end to end.

An experiment names its data, features, target, model, validation, backtest and the notebooks
that run it. The runner (``cryptoai.research.experiments``) executes those notebooks with papermill and
logs one MLflow run per experiment; the notebooks read the same file, so both see one truth.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from cryptoai.backtest.settings import ExecutionSettings
from cryptoai.config import load_config
from cryptoai.modeling.labels import TargetConfig
from cryptoai.modeling.training import (
    DataConfig,
    ModelConfig,
    TrackingConfig,
    TrainConfig,
    ValidationConfig,
    smoke_config,
)

__all__ = ["DEFAULT_NOTEBOOKS", "BacktestSpec", "ExperimentConfig", "load_experiment"]

DEFAULT_NOTEBOOKS = [
    "01-data-exploration",
    "02-feature-engineering",
    "03-model-prototyping",
    "04-backtesting",
]
_SLUG = re.compile(r"^[a-z0-9_-]+$")
_NOTEBOOK = re.compile(r"^\d{2}-[A-Za-z0-9_-]+$")


class BacktestSpec(BaseModel, extra="forbid"):
    """How notebook 04 turns predictions into trades; costs are on unless set to zero."""

    strategy: str = "model_signal"
    params: dict[str, Any] = {}
    # The defaults are the backtester's own (one place: ExecutionSettings).
    fee_bps: float = Field(ExecutionSettings.fee_bps, ge=0)
    slippage_bps: float = Field(ExecutionSettings.slippage_bps, ge=0)
    fill_at: Literal["open", "close"] = ExecutionSettings.fill_at
    initial_cash: float = Field(ExecutionSettings.initial_cash, gt=0)
    execution: dict[str, Any] = {}

    @model_validator(mode="after")
    def _no_double_settings(self) -> BacktestSpec:
        both = sorted(set(self.execution) & {"fee_bps", "slippage_bps", "fill_at", "initial_cash"})
        if both:
            raise ValueError(
                f"execution repeats {', '.join(both)}: set them once, at the backtest level"
            )
        return self

    def settings_dict(self) -> dict[str, Any]:
        """Everything the engine's settings factory takes (``make_settings(**...)``)."""
        return {
            "initial_cash": self.initial_cash,
            "fee_bps": self.fee_bps,
            "slippage_bps": self.slippage_bps,
            "fill_at": self.fill_at,
            **self.execution,
        }

    def execution_settings(self):
        """The engine's ``ExecutionSettings`` (unknown execution keys are BadInputErrors)."""
        from cryptoai.backtest.settings import make_settings

        return make_settings(self.settings_dict())


class ExperimentConfig(BaseModel, extra="forbid"):
    """One experiment: the template fields, the pipeline's parts and the notebooks to run."""

    experiment_id: str = Field(min_length=1)
    name: str
    study: str = Field("cryptoai-experiments", min_length=1)
    owner: str = Field(min_length=1)
    date: datetime.date | None = None
    objective: str = Field(min_length=1)
    notes: str = ""
    dataset: DataConfig
    features: str = "configs/features/default.yaml"
    target: TargetConfig
    model: ModelConfig
    validation: ValidationConfig = ValidationConfig()
    backtest: BacktestSpec = BacktestSpec()
    notebooks: list[str] = list(DEFAULT_NOTEBOOKS)
    #: Extra papermill parameters per notebook, e.g. ``{03-model-prototyping: {candidates: [...]}}``.
    notebook_params: dict[str, dict[str, Any]] = {}
    seed: int = 42

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"{value!r} is not a slug: use lowercase letters, digits, '-' and '_' only "
                "(it names the folder experiments/experiment_YYYYMMDD_NAME/)"
            )
        return value

    @field_validator("notebooks")
    @classmethod
    def _notebook_names(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one notebook, e.g. 03-model-prototyping")
        names = [Path(v).stem if v.endswith(".ipynb") else v for v in value]
        bad = [n for n in names if not _NOTEBOOK.match(n)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: name notebooks as in notebooks/ without "
                "the folder, e.g. 03-model-prototyping"
            )
        if len(set(names)) != len(names):
            raise ValueError("a notebook is listed twice: list each once")
        return names

    @field_validator("notebook_params")
    @classmethod
    def _params_for_listed_notebooks(
        cls, value: dict[str, dict[str, Any]], info: ValidationInfo
    ) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(value) - set(info.data.get("notebooks", [])))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} is not in notebooks: fix the name or list the notebook"
            )
        reserved = {"config_path", "seed", "smoke", "output_dir"}
        for name, params in value.items():
            if taken := sorted(reserved & set(params)):
                raise ValueError(
                    f"{name} sets {', '.join(taken)}: the runner sets those "
                    "(use the config's fields and --smoke)"
                )
        return value

    @field_validator("experiment_id", "owner", "objective", "study")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank: fill it in")
        return value.strip()

    def train_config(self, smoke: bool = False) -> TrainConfig:
        """The equivalent training config; the runner, not ``train``, logs to MLflow."""
        cfg = TrainConfig(
            name=self.name,
            data=self.dataset,
            features=self.features,
            target=self.target,
            model=self.model,
            validation=self.validation,
            seed=self.seed,
            tracking=TrackingConfig(
                experiment=self.study,
                template={
                    "experiment_id": self.experiment_id,
                    "owner": self.owner,
                    "objective": self.objective,
                    "notes": self.notes,
                    **({"date": self.date.isoformat()} if self.date else {}),
                },
                log_model=False,
            ),
        )
        return smoke_config(cfg) if smoke else cfg


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config; errors name the file and the field."""
    return load_config(path, ExperimentConfig)
