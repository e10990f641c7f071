"""Training: one asset per candidate family, then the champion gate that publishes to the model store."""

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Literal

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from pydantic import Field

from election_assets.core.compiled_model import save_compiled_model
from election_assets.core.data_modes import SYNTHETIC_MODE
from election_assets.core.features import FEATURE_NAMES
from election_assets.core.manifest import (
    EXTERNAL,
    SYNTHETIC,
    BayesGap,
    ModelManifest,
    Promotion,
    ReferencePredictions,
    SourceRun,
    library_versions,
)
from election_assets.core.model_store import (
    HOLDOUT_FILE,
    MODEL_FILE,
    REFERENCE_ROWS,
    ModelStore,
    ModelStoreError,
    reference_predictions,
)
from election_assets.core.schema import CANDIDATE_A, CANDIDATE_B, INPUT_FIELD_NAMES, LABEL, REGION_ID
from election_assets.core.synthetic import TRUE_PROBABILITY, BayesMetrics
from election_assets.defs.lineage import fingerprint
from election_assets.defs.resources import MlflowRegistry, ProjectStorage
from election_assets.defs.tags import RUN_TAG_PREFIX
from election_assets.modelling.candidates import (
    CANDIDATES,
    LOWER_IS_BETTER,
    CandidateSpec,
    TrainedCandidate,
    classification_metrics,
    is_better,
    tune,
)
from election_assets.modelling.export import compile_estimator
from election_assets.preparation.schemas import SPLIT, TARGET


class TrainingConfig(dg.Config):
    cv_folds: int = Field(3, ge=2, le=10, description="Folds of the cross-validated search")
    search_iterations: int = Field(6, ge=1, le=200, description="Hyper-parameter configurations tried per family")
    seed: int = Field(42, description="Seed of the search and of the estimators")


def _split(features: pd.DataFrame, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = features[features[SPLIT] == split]
    return rows[list(FEATURE_NAMES)].to_numpy(np.float64), rows[TARGET].to_numpy()


def _log_candidate_run(spec: CandidateSpec, trained: TrainedCandidate, x_test: np.ndarray, data_version: str):
    signature = infer_signature(
        pd.DataFrame(x_test[:100], columns=list(FEATURE_NAMES)), trained.estimator.predict_proba(x_test[:100])
    )
    with mlflow.start_run(run_name=spec.name, nested=True) as run:
        mlflow.set_tags({"candidate": spec.name, "training_data_fingerprint": data_version})
        mlflow.log_params({f"search.{k}": v for k, v in trained.best_params.items()})
        mlflow.log_metrics({f"cv_{k}": v for k, v in trained.cv_metrics.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in trained.test_metrics.items()})
        mlflow.log_metric("search_seconds", trained.search_seconds)
        # Explicit requirements: MLflow's own inference imports the model in a subprocess, ~10 s per model.
        requirements = [f"{name}=={package_version(name)}" for name in ("numpy", "scikit-learn")]
        if spec.mlflow_flavor == "xgboost":
            requirements.append(f"xgboost=={package_version('xgboost-cpu')}")
            info = mlflow.xgboost.log_model(
                trained.estimator, name="model", signature=signature, pip_requirements=requirements
            )
        else:
            info = mlflow.sklearn.log_model(
                trained.estimator,
                name="model",
                signature=signature,
                pip_requirements=requirements,
                skops_trusted_types=list(spec.skops_trusted_types),
            )
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / MODEL_FILE
            save_compiled_model(trained.compiled, path)
            mlflow.log_artifact(str(path), artifact_path="serving")
    trained.mlflow_run_id = run.info.run_id
    trained.mlflow_model_uri = info.model_uri


def build_candidate_asset(spec: CandidateSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"candidate_{spec.name}",
        group_name="training",
        code_version="1",
        kinds={"scikit-learn" if spec.mlflow_flavor == "sklearn" else "xgboost", "mlflow"},
        required_resource_keys={"mlflow"},
        description=f"{spec.title}, tuned by cross-validated randomised search on the training split; "
        "scored on the held-out test split; logged to MLflow as a nested run.",
    )
    def _candidate(
        context: dg.AssetExecutionContext, config: TrainingConfig, region_features: pd.DataFrame
    ) -> dg.Output[TrainedCandidate]:
        x_train, y_train = _split(region_features, "train")
        x_test, y_test = _split(region_features, "test")
        context.log.info(
            f"{spec.name}: searching {config.search_iterations} configurations x {config.cv_folds} folds "
            f"on {len(x_train)} training rows"
        )
        search = tune(spec, x_train, y_train, config.cv_folds, config.search_iterations, config.seed)
        compiled = compile_estimator(search.estimator)
        trained = TrainedCandidate(
            name=spec.name,
            estimator=search.estimator,
            compiled=compiled,
            best_params=search.best_params,
            cv_metrics=search.cv_metrics,
            test_metrics=classification_metrics(y_test, compiled.predict_proba_a(x_test)),
            search_seconds=search.seconds,
        )
        context.log.info(f"{spec.name}: search took {search.seconds:.1f}s; best {search.best_params}")
        _ = context.resources.mlflow  # opens dagster-mlflow's parent run for this Dagster run
        _log_candidate_run(spec, trained, x_test, fingerprint(region_features))
        return dg.Output(
            trained,
            metadata={
                "best_params": search.best_params,
                **{f"cv_{k}": v for k, v in trained.cv_metrics.items()},
                **{f"test_{k}": v for k, v in trained.test_metrics.items()},
                "search_seconds": search.seconds,
                "configurations_tried": search.configurations_tried,
                "mlflow_run_id": trained.mlflow_run_id,
            },
        )

    return _candidate


candidate_assets = [build_candidate_asset(spec) for spec in CANDIDATES]


# A staging directory untouched for this long belongs to a writer that died, not to one still running.
STALE_STAGING_SECONDS = 3600


class ChampionConfig(dg.Config):
    selection_metric: Literal["log_loss", "brier", "accuracy", "roc_auc"] = Field(
        "log_loss", description="Metric that picks the best candidate (on CV) and gates promotion (on held-out data)"
    )
    min_improvement: float = Field(
        0.0, ge=0.0, description="How much the challenger must beat the current champion by to be promoted"
    )


def _holdout_rows(cleaned: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    test_ids = features.loc[features[SPLIT] == "test", REGION_ID]
    rows = cleaned.set_index(REGION_ID).loc[test_ids].reset_index()
    return rows[[REGION_ID, *INPUT_FIELD_NAMES, LABEL]]


def _evaluate_incumbent(store: ModelStore, x_test: np.ndarray, y_test: np.ndarray, log) -> dict | None:
    try:
        incumbent = store.load()
    except ModelStoreError as error:
        if store.latest_version() is not None:
            log.warning(f"current champion cannot be loaded, so any challenger wins: {error}")
        return None
    return {
        "version": incumbent.version,
        "metrics": classification_metrics(y_test, incumbent.model.predict_proba_a(x_test)),
    }


def _align_champion_alias_with_latest(store: ModelStore, registry: MlflowRegistry, log) -> str | None:
    """Point the registry alias ``champion`` at the registry version of the model ``LATEST`` names (no alias if
    nothing is published); returns the version the alias named if it had to be moved.

    Promotion moves the alias just before ``LATEST`` (see ``champion_model``), so a process killed between the
    two leaves the alias on a version the API does not serve. The next run puts it back before anything else.
    """
    try:
        latest = store.latest_version()
        source_run = store.read_manifest(latest).source_run if latest else None
    except ModelStoreError as error:
        log.warning(f"champion alias left as it is: cannot tell which model the store serves: {error}")
        return None
    if source_run is not None and source_run.registered_model != registry.registered_model_name:
        log.warning(f"champion alias left as it is: served model {latest} is not registered in this registry")
        return None
    served = source_run.registered_version if source_run else None
    aliased = registry.champion_version()
    if aliased == served:
        return None
    log.warning(
        f"alias champion named version {aliased}, but the store serves {latest or 'no model'} (version {served}): "
        "a promotion was interrupted, so the alias goes back to what the API serves"
    )
    registry.move_champion_alias(served)
    return aliased


@dg.asset(
    group_name="training",
    code_version="1",
    kinds={"mlflow", "numpy"},
    # Weekly training: a champion older than 8 days means the loop has stalled.
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7)),
)
def champion_model(
    context: dg.AssetExecutionContext,
    config: ChampionConfig,
    storage: ProjectStorage,
    mlflow_registry: MlflowRegistry,
    region_features: pd.DataFrame,
    cleaned_regions: pd.DataFrame,
    candidate_logistic_regression: TrainedCandidate,
    candidate_random_forest: TrainedCandidate,
    candidate_xgboost: TrainedCandidate,
) -> dg.MaterializeResult:
    """The best candidate (by CV), promoted to the model store and the MLflow registry alias ``champion`` only
    if it beats the current champion on the held-out rows."""
    store = storage.model_store()
    alias_restored_from = _align_champion_alias_with_latest(store, mlflow_registry, context.log)
    metric = config.selection_metric
    candidates = [candidate_logistic_regression, candidate_random_forest, candidate_xgboost]
    ranked = sorted(candidates, key=lambda c: c.cv_metrics[metric], reverse=not LOWER_IS_BETTER[metric])
    challenger = ranked[0]
    x_test, y_test = _split(region_features, "test")
    incumbent = _evaluate_incumbent(store, x_test, y_test, context.log)
    challenger_value = challenger.test_metrics[metric]
    if incumbent is None:
        promoted, reason = True, "no loadable champion yet: the first challenger is promoted"
    else:
        incumbent_value = incumbent["metrics"][metric]
        promoted = is_better(metric, challenger_value, incumbent_value, config.min_improvement)
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"challenger {challenger.name} {verdict} champion {incumbent['version']} on held-out {metric}: "
            f"{challenger_value:.4f} vs {incumbent_value:.4f} (min improvement {config.min_improvement})"
        )
    context.log.info(reason)

    data_version = fingerprint(region_features)
    metadata: dict = {
        "promoted": promoted,
        "reason": reason,
        "challenger": challenger.name,
        "candidates_ranked_by_cv": [c.name for c in ranked],
        "training_data_fingerprint": data_version,
        **{f"test_{k}": v for k, v in challenger.test_metrics.items()},
    }
    if alias_restored_from is not None:
        metadata["champion_alias_restored_from"] = alias_restored_from
    # The record of one loop: what triggered it (the project's run tags: the drift sensor's trigger, drift share,
    # champion before), which champion it started from, and by how much it moved.
    loop_tags = {k.removeprefix(RUN_TAG_PREFIX): v for k, v in context.run.tags.items() if k.startswith(RUN_TAG_PREFIX)}
    metadata["trigger"] = loop_tags.get("trigger", "manual or scheduled")
    metadata["champion_before"] = incumbent["version"] if incumbent else "none"
    if incumbent is not None:
        metadata["incumbent_version"] = incumbent["version"]
        sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
        comparison = {
            f"incumbent_test_{metric}": incumbent["metrics"][metric],
            f"{metric}_improvement": sign * (incumbent["metrics"][metric] - challenger_value),
        }
        metadata |= comparison
        mlflow_registry.log_metrics(challenger.mlflow_run_id, comparison)

    bayes_gap = None
    if TRUE_PROBABILITY in region_features.columns:
        test_truth = region_features.loc[region_features[SPLIT] == "test", TRUE_PROBABILITY].to_numpy()
        bayes = BayesMetrics.of(test_truth)
        # The realized gap carries the label noise of a finite test set; the expected gap (accuracy of the
        # champion's decisions averaged over the label draw, from the known p) is exact for these rows.
        decides_a = challenger.compiled.predict_proba_a(x_test) >= 0.5
        expected_accuracy = float(np.mean(np.where(decides_a, test_truth, 1.0 - test_truth)))
        bayes_gap = BayesGap(
            bayes_optimal_accuracy=bayes.accuracy,
            bayes_brier=bayes.brier,
            accuracy_gap_to_bayes=bayes.accuracy - challenger.test_metrics["accuracy"],
            expected_accuracy_gap_to_bayes=bayes.accuracy - expected_accuracy,
            brier_gap_to_bayes=challenger.test_metrics["brier"] - bayes.brier,
        )
        metadata |= asdict(bayes_gap)
        mlflow_registry.log_metrics(challenger.mlflow_run_id, asdict(bayes_gap))

    decision_tags = {"champion_promoted": str(promoted), "champion_reason": reason} | {
        f"loop.{key}": value for key, value in loop_tags.items()
    }
    if not promoted:
        champion_after = metadata["champion_before"]
        mlflow_registry.set_tags(challenger.mlflow_run_id, decision_tags | {"loop.champion_after": champion_after})
        return dg.MaterializeResult(metadata=metadata | {"champion_after": champion_after})
    mlflow_registry.set_tags(challenger.mlflow_run_id, decision_tags)

    holdout = _holdout_rows(cleaned_regions, region_features)

    def write_artifacts(directory: Path) -> None:
        save_compiled_model(challenger.compiled, directory / MODEL_FILE)
        holdout.to_csv(directory / HOLDOUT_FILE, index=False)

    registry_tags = {
        "candidate": challenger.name,
        "training_data_fingerprint": data_version,
        "dagster_run_id": context.run.run_id,
    }
    swept = store.discard_stale_staging(older_than_seconds=STALE_STAGING_SECONDS)
    if swept:
        context.log.warning(f"removed {swept} half-written model version(s) left by crashed runs")
    # The registry and the store cannot change in one step, so the order of the steps is chosen for a process
    # killed between any two of them (errors are handled within each step). The API serves what LATEST names, and
    # LATEST moves last. A process killed
    # - after registering, or after writing the store version: leaves the alias and LATEST on the previous
    #   champion, and behind them a registry version no alias names and a store version LATEST does not name;
    # - after moving the alias: leaves the alias on a complete store version the API does not serve yet, until
    #   the next run's _align_champion_alias_with_latest moves it back;
    # - after moving LATEST: leaves both on the new champion (only the run's last tags are missing).
    # The alias moves before LATEST, not after, because the registry is a remote service, the likelier to fail:
    # its failure then leaves the store as it was, and a failure to move LATEST moves the alias back.
    registered_version = mlflow_registry.register(challenger.mlflow_model_uri, registry_tags)
    source_run = SourceRun(
        dagster_run_id=context.run.run_id,
        mlflow_run_id=challenger.mlflow_run_id,
        mlflow_model_uri=challenger.mlflow_model_uri,
        registered_model=mlflow_registry.registered_model_name,
        registered_version=registered_version,
    )
    reference = reference_predictions(
        challenger.compiled, SYNTHETIC_MODE, holdout[list(INPUT_FIELD_NAMES)].head(REFERENCE_ROWS).to_numpy(np.float64)
    )
    manifest = _manifest(challenger, region_features, bayes_gap, Promotion(metric, reason), source_run, reference)
    store_version = store.publish(manifest, write_artifacts, make_latest=False)
    with mlflow_registry.champion_alias_moved_to(registered_version):
        store.point_latest_to(store_version)
    mlflow_registry.set_tags(
        challenger.mlflow_run_id, {"model_store_version": store_version, "loop.champion_after": store_version}
    )
    context.log.info(
        f"published champion {store_version} "
        f"(MLflow {mlflow_registry.registered_model_name} version {registered_version})"
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "model_store_version": store_version,
            "champion_after": store_version,
            "model_store_path": dg.MetadataValue.path(str(store.version_dir(store_version))),
            "registered_model_version": registered_version,
        }
    )


def _manifest(
    challenger: TrainedCandidate,
    region_features: pd.DataFrame,
    bayes_gap: BayesGap | None,
    promotion: Promotion,
    source_run: SourceRun,
    reference: ReferencePredictions,
) -> ModelManifest:
    split = region_features[SPLIT]
    return ModelManifest(
        data_mode=SYNTHETIC if bayes_gap is not None else EXTERNAL,
        model_name=challenger.name,
        model_kind=challenger.compiled.kind,
        trained_at=datetime.now(UTC).isoformat(),
        metrics=challenger.test_metrics,
        feature_names=list(FEATURE_NAMES),
        input_schema=SYNTHETIC_MODE.input_schema(),
        labels={"positive": CANDIDATE_A, "negative": CANDIDATE_B},
        hyperparameters=challenger.best_params,
        training_data_fingerprint=fingerprint(region_features),
        training_rows=int((split == "train").sum()),
        source_run=source_run,
        library_versions=library_versions("numpy", "pandas", "scikit-learn", "xgboost-cpu", "mlflow", "dagster"),
        reference=reference,
        holdout_rows=int((split == "test").sum()),
        cv_metrics=challenger.cv_metrics,
        bayes=bayes_gap,
        promotion=promotion,
    )


# Re-exported for load_from_defs_folder, which collects module-level definitions.
candidate_logistic_regression, candidate_random_forest, candidate_xgboost = candidate_assets
