"""The serving contract of each data mode: the input fields a request carries, which of them
are required, and the pure function that turns them into the model's columns.

The model store checks a version's feature list against the contract of its manifest's ``data_mode``, and the
API serves the contract it is configured for (``ELECTION_API_MODE``), so both read the modes from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from election_assets.core.features import FEATURE_NAMES, engineer_features
from election_assets.core.manifest import REAL, ModelManifest
from election_assets.core.real_features import (
    OPTIONAL_REAL_FIELDS,
    REAL_INPUT_FIELDS,
    REAL_MODEL_COLUMNS,
    real_model_features,
)
from election_assets.core.schema import INPUT_FIELDS, InputField


@dataclass(frozen=True, eq=False)
class DataMode:
    name: str
    unit: str  # what one input row describes, for messages and docs
    input_fields: tuple[InputField, ...]
    # Fields a request may leave out (or send as null); the feature function receives NaN for them.
    optional_fields: frozenset[str]
    model_columns: tuple[str, ...]
    features: Callable[[np.ndarray], np.ndarray]

    @property
    def input_field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.input_fields)

    @property
    def required_field_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.input_field_names if name not in self.optional_fields)

    def input_schema(self) -> list[dict[str, Any]]:
        """The input fields as a manifest records them: name, kind, description, range, and whether required."""
        return [asdict(spec) | {"required": spec.name not in self.optional_fields} for spec in self.input_fields]


SYNTHETIC_MODE = DataMode(
    name="synthetic",
    unit="region",
    input_fields=INPUT_FIELDS,
    optional_fields=frozenset(),
    model_columns=FEATURE_NAMES,
    features=engineer_features,
)
REAL_MODE = DataMode(
    name=REAL,
    unit="county",
    input_fields=REAL_INPUT_FIELDS,
    optional_fields=OPTIONAL_REAL_FIELDS,
    model_columns=REAL_MODEL_COLUMNS,
    features=real_model_features,
)
DATA_MODES: dict[str, DataMode] = {mode.name: mode for mode in (SYNTHETIC_MODE, REAL_MODE)}


def data_mode_of(manifest: ModelManifest) -> DataMode:
    """The contract a published model was trained on. Models trained on a file-fed history of the 14 fields
    (``data_mode: external``) share synthetic mode's contract."""
    return REAL_MODE if manifest.data_mode == REAL else SYNTHETIC_MODE
