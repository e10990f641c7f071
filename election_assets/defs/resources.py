"""Resources: where data, models and reports live, and how MLflow is reached. Values come from the environment
(``election_assets.settings``), so the same code runs on a laptop and on Kubernetes."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
from dagster_mlflow import mlflow_tracking
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from election_assets.core.model_store import ModelStore, ModelStoreError, StoredModel
from election_assets.core.paths import StorePaths, drift_summary_path
from election_assets.settings import Cadence, PipelineSettings

CHAMPION_ALIAS = "champion"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = {EXPERIMENT_KIND_TAG: "custom_model_development"}


class ProjectStorage(dg.ConfigurableResource):
    """Directories for the model stores (read by the API; one per data mode) and the reports."""

    # ELECTION_DATA_DIR: election night's priors live under it (``StorePaths.live_prior``).
    data_dir: str
    model_store_dir: str
    real_model_store_dir: str
    reports_dir: str
    # Real mode's source files (ELECTION_REAL_DATA_DIR; default: the files shipped inside the package).
    real_data_dir: str
    # The polls feed's inbox (ELECTION_POLLS_INBOX; default: <ELECTION_DATA_DIR>/polls_inbox), watched by a sensor.
    polls_inbox_dir: str

    def model_store(self) -> ModelStore:
        return ModelStore(self.model_store_dir)

    def load_champion(self, needed_for: str) -> StoredModel:
        """The served champion, or a run failure saying what needed it and why the store cannot serve one."""
        try:
            return self.model_store().load()
        except ModelStoreError as error:
            raise dg.Failure(f"no champion {needed_for} in {self.model_store_dir}: {error}") from error

    def real_model_store(self) -> ModelStore:
        return ModelStore(self.real_model_store_dir)

    def store_paths(self) -> StorePaths:
        """The same paths as ``StorePaths.from_env`` gives the API and the live updater (priors, replay summaries)."""
        return StorePaths(
            Path(self.data_dir), Path(self.model_store_dir), Path(self.real_model_store_dir), Path(self.reports_dir)
        )

    def drift_summary_path(self) -> Path:
        path = drift_summary_path(self.reports_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def reports_path(self, *parts: str) -> Path:
        path = Path(self.reports_dir, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


class RetrainingPolicy(dg.ConfigurableResource):
    """When the drift sensor retrains (ELECTION_RETRAIN_DRIFT_SHARE, ELECTION_RETRAIN_COOLDOWN_MINUTES)."""

    drift_share: float
    cooldown_seconds: float


class MlflowRegistry(dg.ConfigurableResource):
    """The MLflow experiment and model registry the pipeline writes to.

    Runs themselves are opened by dagster-mlflow's ``mlflow_tracking`` resource (key ``mlflow``); this resource
    makes sure the experiment exists with its artifacts where we want them, and handles registry aliases.
    """

    tracking_uri: str
    artifact_location: str
    experiment_name: str
    registered_model_name: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)

    def ensure_experiment(self, suffix: str = "") -> str:
        """The id of the experiment ``<experiment_name><suffix>``, created with its artifacts beside the main
        experiment's if missing, and marked as a model-training experiment so MLflow's UI opens its runs (MLflow 3
        opens an experiment without this tag in its GenAI view, on traces)."""
        name = f"{self.experiment_name}{suffix}"
        mlflow.set_tracking_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            location = f"{self.artifact_location.rstrip('/')}{suffix}"
            experiment_id = mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        else:
            experiment_id = experiment.experiment_id
            if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND[EXPERIMENT_KIND_TAG]:
                self.client().set_experiment_tag(
                    experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND[EXPERIMENT_KIND_TAG]
                )
        return experiment_id

    def champion_version(self) -> str | None:
        try:
            return str(self.client().get_model_version_by_alias(self.registered_model_name, CHAMPION_ALIAS).version)
        except MlflowException:
            return None

    def register(self, model_uri: str, tags: dict[str, str]) -> str:
        """Register ``model_uri`` as a new version of the registered model, without moving any alias."""
        mlflow.set_tracking_uri(self.tracking_uri)
        return str(mlflow.register_model(model_uri, self.registered_model_name, tags=tags).version)

    def move_champion_alias(self, version: str | None) -> None:
        """Point the ``champion`` alias at ``version``; ``None`` removes it (no champion)."""
        client = self.client()
        if version is None:
            client.delete_registered_model_alias(self.registered_model_name, CHAMPION_ALIAS)
        else:
            client.set_registered_model_alias(self.registered_model_name, CHAMPION_ALIAS, version)

    @contextmanager
    def champion_alias_moved_to(self, version: str) -> Iterator[None]:
        """Move the ``champion`` alias to ``version`` for the block; if the block raises, move it back.

        The block is the model store's commit (moving ``LATEST``): if that fails, the API keeps serving the
        previous champion, so the alias must name it again.
        """
        previous = self.champion_version()
        self.move_champion_alias(version)
        try:
            yield
        except BaseException:
            self.move_champion_alias(previous)
            raise

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        client = self.client()
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_tag(run_id, key, value)


def _mlflow_tracking_in_our_experiment(init_context: dg.InitResourceContext):
    init_context.resources.mlflow_registry.ensure_experiment()
    return mlflow_tracking.resource_fn(init_context)


def build_resources(settings: PipelineSettings, cadence: Cadence) -> dict[str, object]:
    registry = MlflowRegistry(
        tracking_uri=settings.mlflow_tracking_uri,
        artifact_location=settings.mlflow_artifact_location,
        experiment_name=settings.mlflow_experiment,
        registered_model_name=settings.registered_model_name,
    )
    # dagster-mlflow's resource opens one MLflow parent run per Dagster run; candidates nest their runs under it.
    tracking = dg.ResourceDefinition(
        resource_fn=_mlflow_tracking_in_our_experiment,
        config_schema=mlflow_tracking.config_schema,
        description=mlflow_tracking.description,
        required_resource_keys={"mlflow_registry"},
    ).configured({"experiment_name": settings.mlflow_experiment, "mlflow_tracking_uri": settings.mlflow_tracking_uri})
    return {
        "storage": ProjectStorage(
            data_dir=str(settings.data_dir),
            model_store_dir=str(settings.model_store_dir),
            real_model_store_dir=str(settings.real_model_store_dir),
            reports_dir=str(settings.reports_dir),
            real_data_dir=str(settings.real_data_dir),
            polls_inbox_dir=str(settings.polls_inbox_dir),
        ),
        "retraining_policy": RetrainingPolicy(
            drift_share=cadence.retrain_drift_share, cooldown_seconds=cadence.retrain_cooldown_seconds
        ),
        "mlflow_registry": registry,
        "mlflow": tracking,
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(PipelineSettings.from_env(), Cadence.from_env()))
