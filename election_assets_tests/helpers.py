"""Helpers for tests that run parts of the real graph in an isolated sandbox."""

from collections.abc import Mapping

import dagster as dg

from election_assets.defs.resources import build_resources
from election_assets.settings import Cadence, PipelineSettings

# The assets a training run materializes: champion_model and everything upstream of it.
TRAINING_ASSETS = (
    "raw_regions",
    "cleaned_regions",
    "region_features",
    "candidate_logistic_regression",
    "candidate_random_forest",
    "candidate_xgboost",
    "champion_model",
)


def run_assets(
    sandbox,
    run_config: dict,
    selection: list[str] | None = None,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
):
    """Execute the ``election_pipeline`` job (optionally a subset of its assets) in the sandbox, in process."""
    job = sandbox.definitions().resolve_job_def("election_pipeline")
    with sandbox.environment():
        return job.execute_in_process(
            run_config=run_config,
            instance=instance or dg.DagsterInstance.ephemeral(),
            asset_selection=[dg.AssetKey(name) for name in selection] if selection else None,
            raise_on_error=raise_on_error,
        )


def project_resources(env: Mapping[str, str], *keys: str) -> dict[str, object]:
    """The code location's resources ``keys``, built from ``env`` as the code location builds them."""
    resources = build_resources(PipelineSettings.from_env(env), Cadence.from_env(env))
    return {key: resources[key] for key in keys}


def sensor_resources(env: Mapping[str, str]) -> dict[str, object]:
    """The resources the drift sensor reads."""
    return project_resources(env, "storage", "retraining_policy")
