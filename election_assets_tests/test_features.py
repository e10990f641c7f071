"""The shared feature module: pure, row-independent, and the same for one row as inside a batch."""

import subprocess
import sys

import numpy as np
import pytest

from election_assets.core.features import DERIVED_FEATURE_NAMES, FEATURE_NAMES, engineer_features, input_matrix
from election_assets.core.schema import INPUT_FIELD_NAMES
from election_assets.core.synthetic import generate_regions


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return generate_regions(500, seed=3)[list(INPUT_FIELD_NAMES)].to_numpy(np.float64)


def test_at_least_twenty_engineered_features():
    assert len(DERIVED_FEATURE_NAMES) >= 20
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_one_row_alone_equals_the_same_row_inside_a_batch(inputs):
    batch = engineer_features(inputs)
    for i in (0, 17, 499):
        alone = engineer_features(inputs[i : i + 1])
        np.testing.assert_array_equal(alone[0], batch[i])


def test_records_map_to_the_canonical_column_order(inputs):
    record = dict(zip(INPUT_FIELD_NAMES, inputs[5], strict=True))
    shuffled = dict(reversed(list(record.items())))  # a client may send fields in any order
    np.testing.assert_array_equal(engineer_features(input_matrix([shuffled]))[0], engineer_features(inputs[5:6])[0])


def test_features_are_finite_on_valid_inputs(inputs):
    assert np.isfinite(engineer_features(inputs)).all()


def test_wrong_shape_is_rejected_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(n, 14\)"):
        engineer_features(np.zeros((3, 13)))


def test_feature_module_imports_neither_dagster_nor_pandas():
    code = (
        "import sys, election_assets.core.features, election_assets.core.model_store;"
        "print(sorted(m for m in ('dagster','pandas','mlflow','sklearn','xgboost','evidently') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
