"""Feature specs: a YAML list of named features with parameters, validated before any data
is touched, so a typo fails in a second with the entry it is in.

.. code-block:: yaml

    features:
      - rsi                          # defaults
      - name: sma
        params: {window: 50, relative: true}
      - name: bollinger
        columns: [bb_pband_20_2]     # keep a subset of the outputs
        prefix: "d_"                 # prepended to the column names
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from cryptoai.config import load_config
from cryptoai.features.registry import FEATURES, FeatureDef, Params, known_features

# Bumped whenever a feature's computation changes, so cached features are recomputed.
FEATURES_VERSION = "1"


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("feature_spec", message)


class FeatureItem(BaseModel):
    """One entry of a spec. ``params`` are validated against the feature's parameter model and
    stored resolved (defaults filled in), so equal specs hash equally."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    columns: list[str] | None = None
    prefix: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check(self) -> FeatureItem:
        if self.name not in FEATURES:
            raise _fail(f"unknown feature {self.name!r}: use one of {', '.join(known_features())}")
        try:
            resolved = FEATURES[self.name].params.model_validate(self.params)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            param = f"parameter {where!r}" if where else "parameters"
            raise _fail(f"feature {self.name!r}: {param}: {err['msg']}") from None
        self.params = resolved.model_dump()
        if self.columns is not None:
            available = self.definition.columns(resolved)
            unknown = [c for c in self.columns if c not in available]
            if unknown or not self.columns:
                raise _fail(
                    f"feature {self.name!r}: columns {unknown or '[]'} not among its outputs;"
                    f" choose from {', '.join(available)}"
                )
        return self

    @property
    def definition(self) -> FeatureDef:
        return FEATURES[self.name]

    def resolved_params(self) -> Params:
        return self.definition.params.model_validate(self.params)

    def output_columns(self) -> list[str]:
        """The columns this entry adds, in order, with the prefix applied."""
        names = self.columns or self.definition.columns(self.resolved_params())
        return [self.prefix + c for c in names]


class FeatureSpec(BaseModel):
    """An ordered list of features; output columns must be unique across entries."""

    model_config = ConfigDict(extra="forbid")

    features: list[FeatureItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_columns(self) -> FeatureSpec:
        seen: dict[str, int] = {}
        for i, item in enumerate(self.features):
            for col in item.output_columns():
                if col in seen:
                    j = seen[col]
                    raise _fail(
                        f"entries {j} ({self.features[j].name}) and {i} ({item.name}) both"
                        f" produce column {col!r}: remove one or give one a prefix"
                    )
                seen[col] = i
        return self

    def columns(self) -> list[str]:
        """All output columns, in spec order."""
        return [c for item in self.features for c in item.output_columns()]

    def fingerprint(self) -> str:
        """A short hash of the resolved spec and the feature code version."""
        payload = json.dumps(
            {"version": FEATURES_VERSION, "spec": self.model_dump(mode="json")}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_feature_spec(path: str | Path) -> FeatureSpec:
    """Read and validate a YAML feature spec; errors name the file and the entry."""
    return load_config(path, FeatureSpec)


def as_spec(spec: FeatureSpec | str | Path) -> FeatureSpec:
    """A spec object from a spec or the path of a YAML spec."""
    return spec if isinstance(spec, FeatureSpec) else load_feature_spec(spec)
