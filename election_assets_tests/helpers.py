"""Helpers for tests that run parts of the real graph in an isolated sandbox."""

import dagster as dg

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
