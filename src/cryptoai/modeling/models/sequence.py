"""Sequence models from pytorch-forecasting (LSTM, GRU, TFT, N-HiTS) behind the tabular interface.

The adapter: the prediction for bar t sees the ``window`` feature rows ending at t, and
nothing else. Each bar becomes its own short series in a ``TimeSeriesDataSet`` (the rows
before t as encoder, row t as the one-step decoder; the features are "known" at t because
they are computed at its close). The dataset's target column is the label on row t and a
constant 0 on encoder rows, so past labels, which may look beyond t, are never an input;
predicting therefore needs nothing but X, exactly like a tabular model. Bars without
``window - 1`` complete rows of history before them get NaN.

The cost of this honesty is memory: the training frame holds every window (``window`` x
rows x features floats). Training is seeded and deterministic (lightning
``seed_everything``, deterministic algorithms, single-process loading), so the same data,
parameters and ``random_state`` give identical predictions.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pytorch_forecasting.metrics import RMSE, MultiHorizonMetric

from cryptoai.errors import BadInputError
from cryptoai.modeling.models.base import (
    BaseModel,
    ClassifierModel,
    RegressorModel,
    as_features,
    as_target,
    encode_classes,
    finite_rows,
)

log = logging.getLogger(__name__)

ARCHS = ("lstm", "gru", "tft", "nhits")
_TARGET, _TIME, _GROUP = "__target", "__t", "__window"


class SoftmaxCrossEntropy(MultiHorizonMetric):
    """Cross entropy on class logits for a target stored as class codes in a real column.

    pytorch-forecasting's own ``CrossEntropy`` needs a categorical target, which its
    recurrent network rejects; this one lets every architecture classify.
    """

    def loss(self, y_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        flat = F.cross_entropy(
            y_pred.reshape(-1, y_pred.size(-1)), target.reshape(-1).long(), reduction="none"
        )
        return flat.view(-1, target.size(-1))

    def to_prediction(self, y_pred: torch.Tensor) -> torch.Tensor:
        return y_pred.argmax(dim=-1).to(y_pred.dtype)

    def to_quantiles(self, y_pred: torch.Tensor, quantiles=None) -> torch.Tensor:
        return y_pred


class _Sequence(BaseModel):
    """Shared windowing, training and inference; the subclasses fix the task."""

    def __init__(
        self,
        arch: str = "lstm",
        window: int = 32,
        hidden_size: int = 16,
        layers: int = 1,
        dropout: float = 0.1,
        attention_heads: int = 1,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 10,
        gradient_clip: float | None = 0.1,
        random_state: int = 0,
        num_threads: int = 1,
        checkpoint_dir: str | None = None,
        progress: bool = False,
        network_kwargs: dict | None = None,
    ):
        self.arch = arch
        self.window = window
        self.hidden_size = hidden_size
        self.layers = layers
        self.dropout = dropout
        self.attention_heads = attention_heads
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.gradient_clip = gradient_clip
        self.random_state = random_state
        self.num_threads = num_threads
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.network_kwargs = network_kwargs

    @property
    def context_length(self) -> int:
        return int(self.window) - 1

    @property
    def _pad(self) -> int:
        """Leading filler rows: recurrent nets drop the first encoder step (it only carries
        the shifted target), so they get one extra row to see all ``window`` rows."""
        return 1 if self.arch in {"lstm", "gru"} else 0

    def __getstate__(self) -> dict:
        """Picklable (for MLflow and multiprocessing): drop lightning's trainer back-reference
        and pytorch-forecasting's lazily built output class from the fitted network."""
        state = self.__dict__.copy()
        net = state.get("network_")
        if net is not None:
            net.__dict__.pop("_output_class", None)
            net.__dict__["_trainer"] = None
        return state

    # ----------------------------------------------------------------------- fit
    def fit(self, X, y) -> _Sequence:
        self._check_params()
        frame = as_features(X)
        target = as_target(y, len(frame))
        ends = _window_ends(finite_rows(frame), self.window)
        ends = ends[np.isfinite(target[ends])]
        if ends.size == 0:
            raise BadInputError(
                f"no bar has {self.window} complete feature rows and a label to fit the "
                f"{self.arch} model on: give more history or a smaller window"
            )
        self.feature_names_ = list(frame.columns)
        self.n_features_in_ = len(self.feature_names_)
        coded = self._encode_target(target[ends])
        data = _window_frame(frame.to_numpy(np.float32), ends, self.window, coded, self._pad)
        with _quiet_torch(self.num_threads):
            import lightning.pytorch as pl

            pl.seed_everything(int(self.random_state), workers=True, verbose=False)
            dataset = self._dataset(data)
            network = self._network(dataset)
            trainer = pl.Trainer(**self._trainer_kwargs())
            loader = _cached_loader(dataset, int(self.batch_size))
            trainer.fit(network, train_dataloaders=loader)
            checkpoint = getattr(trainer, "checkpoint_callback", None)
            self.checkpoint_path_ = (checkpoint.last_model_path or None) if checkpoint else None
        self.network_ = network.cpu().eval()
        self.dataset_params_ = dataset.get_parameters()
        log.debug("fitted %s on %d windows", self.arch, ends.size)
        return self

    def _check_params(self) -> None:
        if self.arch not in ARCHS:
            raise BadInputError(
                f"unknown sequence architecture {self.arch!r}: use one of {', '.join(ARCHS)}"
            )
        if int(self.window) < 2:
            raise BadInputError(
                f"window must be at least 2 bars (history plus the bar itself), got {self.window}"
            )
        if int(self.max_epochs) < 1 or int(self.batch_size) < 1:
            raise BadInputError("max_epochs and batch_size must be at least 1")

    def _dataset(self, data: pd.DataFrame):
        from pytorch_forecasting import TimeSeriesDataSet

        features = self._internal_names()
        # Recurrent nets and N-HiTS insist on consuming the target column; it is 0 on every
        # encoder row, so they see no label. TFT does not need it at all.
        unknown = [] if self.arch == "tft" else [_TARGET]
        return TimeSeriesDataSet(
            data,
            time_idx=_TIME,
            target=_TARGET,
            group_ids=[_GROUP],
            max_encoder_length=int(self.window) - 1 + self._pad,
            min_encoder_length=int(self.window) - 1 + self._pad,
            max_prediction_length=1,
            min_prediction_length=1,
            time_varying_known_reals=features,
            time_varying_unknown_reals=unknown,
            target_normalizer=None,
            add_encoder_length=False,
            add_relative_time_idx=False,
            add_target_scales=False,
        )

    def _network(self, dataset):
        from pytorch_forecasting import NHiTS, RecurrentNetwork, TemporalFusionTransformer

        common = {
            "learning_rate": float(self.learning_rate),
            "weight_decay": float(self.weight_decay),
            "log_interval": -1,
            **self._loss_kwargs(),
        }
        extra = dict(self.network_kwargs or {})
        if self.arch in {"lstm", "gru"}:
            return RecurrentNetwork.from_dataset(
                dataset,
                cell_type=self.arch.upper(),
                hidden_size=int(self.hidden_size),
                rnn_layers=int(self.layers),
                dropout=float(self.dropout),
                **common,
                **extra,
            )
        if self.arch == "tft":
            return TemporalFusionTransformer.from_dataset(
                dataset,
                hidden_size=int(self.hidden_size),
                lstm_layers=int(self.layers),
                attention_head_size=int(self.attention_heads),
                hidden_continuous_size=max(1, int(self.hidden_size) // 2),
                dropout=float(self.dropout),
                **common,
                **extra,
            )
        return NHiTS.from_dataset(
            dataset,
            hidden_size=int(self.hidden_size),
            dropout=float(self.dropout),
            **common,
            **extra,
        )

    def _trainer_kwargs(self) -> dict:
        callbacks = []
        if self.checkpoint_dir:
            from lightning.pytorch.callbacks import ModelCheckpoint

            Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)
            callbacks.append(
                ModelCheckpoint(dirpath=str(self.checkpoint_dir), save_top_k=0, save_last=True)
            )
        return {
            "max_epochs": int(self.max_epochs),
            "accelerator": "cpu",
            "devices": 1,
            "deterministic": True,
            "logger": False,
            "enable_progress_bar": bool(self.progress),
            "enable_model_summary": False,
            "enable_checkpointing": bool(callbacks),
            "callbacks": callbacks,
            "gradient_clip_val": self.gradient_clip,
            "num_sanity_val_steps": 0,
        }

    # ------------------------------------------------------------------- predict
    def _raw_predict(self, X) -> np.ndarray:
        """Network output per input row, shape (rows, outputs), NaN without a full window."""
        from pytorch_forecasting import TimeSeriesDataSet

        frame = as_features(X, self.feature_names_)
        ends = _window_ends(finite_rows(frame), self.window)
        out = np.full((len(frame), self._n_outputs()), np.nan)
        if ends.size == 0:
            return out
        data = _window_frame(
            frame.to_numpy(np.float32), ends, self.window, np.zeros(ends.size), self._pad
        )
        with _quiet_torch(self.num_threads):
            dataset = TimeSeriesDataSet.from_parameters(
                self.dataset_params_, data, predict=False, stop_randomization=True
            )
            loader = dataset.to_dataloader(train=False, batch_size=1024, num_workers=0)
            with torch.inference_mode():
                for x, _ in loader:
                    pred = self.network_(x)["prediction"]
                    rows = x["decoder_time_idx"][:, 0].numpy()
                    out[rows] = pred[:, 0, :].double().reshape(len(rows), -1).numpy()
        return out

    def _internal_names(self) -> list[str]:
        """Column names safe inside torch modules (user names may hold dots)."""
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _encode_target(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _loss_kwargs(self) -> dict:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError


class SequenceClassifier(ClassifierModel, _Sequence):
    """A sequence classifier: softmax over the classes seen in training."""

    task: ClassVar[str] = "classification"

    def _check_params(self) -> None:
        super()._check_params()
        if self.arch == "nhits":
            raise BadInputError(
                "nhits forecasts real values only: use it with a forward_return target"
            )

    def _encode_target(self, values: np.ndarray) -> np.ndarray:
        self.classes_, codes = encode_classes(values)
        return codes.astype(np.float32)

    def _loss_kwargs(self) -> dict:
        return {"loss": SoftmaxCrossEntropy(), "output_size": len(self.classes_)}

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def predict_proba(self, X) -> np.ndarray:
        from scipy.special import softmax

        logits = self._raw_predict(X)
        ok = np.isfinite(logits).all(axis=1)
        logits[ok] = softmax(logits[ok], axis=1)
        return logits


class SequenceRegressor(RegressorModel, _Sequence):
    """A sequence regressor trained on the standardized target (RMSE loss)."""

    task: ClassVar[str] = "regression"

    def _encode_target(self, values: np.ndarray) -> np.ndarray:
        self.y_mean_ = float(np.mean(values))
        self.y_scale_ = float(np.std(values)) or 1.0
        return ((values - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _loss_kwargs(self) -> dict:
        return {"loss": RMSE()}

    def _n_outputs(self) -> int:
        return 1

    def predict(self, X) -> np.ndarray:
        return self._raw_predict(X)[:, 0] * self.y_scale_ + self.y_mean_


# ------------------------------------------------------------------------ windows
def _window_ends(complete: np.ndarray, window: int) -> np.ndarray:
    """Positions t whose rows t-window+1..t all have complete features."""
    bad = np.concatenate([[0], np.cumsum(~complete)])
    t = np.arange(window - 1, complete.size)
    return t[(bad[t + 1] - bad[t + 1 - window]) == 0]


def _window_frame(
    values: np.ndarray, ends: np.ndarray, window: int, last_target, pad: int = 0
) -> pd.DataFrame:
    """Long frame with one short series per window: rows ``end-window+1 .. end``.

    ``__t`` is the absolute row position (so predictions map back to bars), ``__window``
    the window id, ``__target`` the label on the last row and 0 elsewhere. ``pad`` filler
    rows go first, copies of the window's first row, so no row before the window is read.
    """
    n_feat = values.shape[1]
    length = window + pad
    positions = ends[:, None] + np.arange(-length + 1, 1)[None, :]
    rows = np.maximum(positions, (ends - window + 1)[:, None])
    data = pd.DataFrame(values[rows.ravel()], columns=[f"x{i}" for i in range(n_feat)])
    data[_TIME] = positions.ravel().astype(np.int64)
    data[_GROUP] = np.repeat(ends, length).astype(str)
    target = np.zeros((ends.size, length), dtype=np.float32)
    target[:, -1] = np.asarray(last_target, dtype=np.float32)
    data[_TARGET] = target.ravel()
    return data


def _cached_loader(dataset, batch_size: int):
    """A shuffling loader over samples built once: ``TimeSeriesDataSet.__getitem__`` costs
    milliseconds per sample, which would otherwise be paid again every epoch.

    Shuffling draws from torch's global generator (seeded in ``fit``); one process, so
    the order is reproducible.
    """
    from torch.utils.data import DataLoader

    samples = [dataset[i] for i in range(len(dataset))]
    return DataLoader(
        samples,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(samples) > batch_size,
        collate_fn=dataset._collate_fn,
        num_workers=0,
    )


@contextlib.contextmanager
def _quiet_torch(num_threads: int) -> Iterator[None]:
    """Fixed torch threads, deterministic kernels and quiet lightning; restored on exit."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    torch.set_num_threads(max(1, int(num_threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"(lightning|pytorch_forecasting|torch)(\.|$)")
            warnings.filterwarnings("ignore", category=UserWarning)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
