"""The production configuration for real: the whole graph (the synthetic pipeline, then every real-mode job and
partition) on one Dagster instance stored in PostgreSQL (the storage section of dagster.prod.yaml) with the MLflow
tracking store in PostgreSQL too, and the two model stores laid out as in the pods (the real-mode store inside the
synthetic one's directory, as /models/real is inside /models). Fresh databases per run, dropped afterwards. Needs the
PostgreSQL on 127.0.0.1:5432 that the development and CI machines run. Also builds the run pod's Kubernetes Job from
dagster.prod.yaml's K8sRunLauncher config, offline."""

import os
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher
from mlflow.tracking import MlflowClient

from election_assets.core.data_modes import SYNTHETIC_MODE, data_mode_of
from election_assets.core.manifest import REAL
from election_assets.core.model_store import ModelStore
from election_assets.real.backtest import BACKTEST_YEARS
from election_assets.real.features import FEATURE_YEARS
from election_assets.real_mode import STEPS, run_all
from election_assets_tests.helpers import run_assets

ROOT = Path(__file__).resolve().parents[1]
DAGSTER_IMAGE = "ghcr.io/election-forecasting/election-forecasting-dagster:0.1.0"
DAGSTER_HOME = "/opt/dagster/dagster_home"
PG = {"host": os.environ.get("ELECTION_TEST_PG_HOST", "127.0.0.1"), "port": 5432, "user": "postgres"}
SEARCH = {"config": {"search_iterations": 1, "cv_folds": 2}}
SMALL = {
    "ops": {
        "raw_regions": {"config": {"n_regions": 3_000}},
        "current_regions": {"config": {"n_regions": 800}},
        "candidate_logistic_regression": SEARCH,
        "candidate_random_forest": SEARCH,
        "candidate_xgboost": SEARCH,
    }
}


def _admin():
    connection = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    connection.autocommit = True
    return connection


@pytest.fixture(scope="module")
def databases():
    try:
        admin = _admin()
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL on {PG['host']}:5432 ({error})")
    names = {role: f"election_test_{uuid.uuid4().hex[:10]}_{role}" for role in ("dagster", "mlflow")}
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute(f'CREATE DATABASE "{name}"')
    yield names
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def _fetch_one(dbname: str, query: str, params: tuple = ()) -> tuple:
    connection = psycopg2.connect(dbname=dbname, **PG)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()
    finally:
        connection.close()


def _production_instance_config() -> dict:
    return yaml.safe_load((ROOT / "instance" / "dagster.prod.yaml").read_text())


def test_production_run_launcher_config_is_valid_for_dagster_k8s():
    launcher = _production_instance_config()["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    os.environ.setdefault("DAGSTER_K8S_JOB_NAMESPACE", "election")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors


def _run_pod_job(config: dict, tmp_path: Path) -> dict:
    """The Kubernetes Job dagster-k8s builds for a run from this launcher config, as the API server would receive it.

    Offline: the launcher is given a kubeconfig naming an unreachable cluster (it only parses it), and nothing is sent.
    """
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster_k8s.job import construct_dagster_k8s_job
    from kubernetes.client import ApiClient

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "offline",
                "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
                "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
                "users": [{"name": "offline", "user": {}}],
            }
        )
    )
    processed = process_config(
        K8sRunLauncher.config_type(), {**config, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    )
    assert processed.success, processed.errors
    launcher = K8sRunLauncher(**processed.value)
    origin = JobPythonOrigin(
        "election_pipeline",
        RepositoryPythonOrigin(
            "/opt/venv/bin/python",
            ModuleCodePointer("election_assets.definitions", "defs", working_directory="/opt/dagster/app"),
            container_image=DAGSTER_IMAGE,
        ),
    )
    run = dg.DagsterRun(job_name="election_pipeline", run_id=str(uuid.uuid4()), job_code_origin=origin)
    context = launcher.get_container_context_for_run(run)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=DAGSTER_IMAGE, run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name=f"dagster-run-{run.run_id}",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/run-id": run.run_id},
    )
    return ApiClient().sanitize_for_serialization(job)


def test_run_pod_job_built_from_the_production_launcher(tmp_path):
    """The run pod: our image, the three shared claims read-write at the paths the settings name, the training
    resources, non-root with a read-only root filesystem (emptyDir /tmp and DAGSTER_HOME to write in), and the label
    the dagster-release NetworkPolicy selects."""
    import kubernetes_validate

    from deployment_tests.deploy_helpers import KUBERNETES_VERSION

    os.environ.setdefault("DAGSTER_K8S_JOB_NAMESPACE", "election")
    job = _run_pod_job(_production_instance_config()["run_launcher"]["config"], tmp_path)
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DAGSTER_IMAGE
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == "dagster"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ELECTION_DATA_DIR"] == "/data"
    assert env["ELECTION_MODEL_STORE"] == "/models" and env["ELECTION_REPORTS_DIR"] == "/reports"
    assert env["ELECTION_REAL_MODEL_STORE"] == "/models/real"
    assert env["DAGSTER_HOME"] == DAGSTER_HOME
    assert {"secretRef": {"name": "election-mlflow"}} in container["envFrom"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    claims = {
        path: v["persistentVolumeClaim"]["claimName"] for path, v in mounts.items() if "persistentVolumeClaim" in v
    }
    assert claims == {"/models": "election-model-store", "/reports": "election-reports", "/data": "election-data"}
    scratch = {path for path, v in mounts.items() if "emptyDir" in v}
    assert scratch == {"/tmp", DAGSTER_HOME}  # noqa: S108 - emptyDir mount points
    assert set(claims) | scratch == set(mounts)
    assert not any(m.get("readOnly") for m in container["volumeMounts"])
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "8Gi"},
    }
    pod_sc, container_sc = pod["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 10001 and pod_sc["runAsGroup"] == 10001
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container_sc == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_io_manager_storage_is_on_the_run_pods_shared_claim():
    """Runs are separate pods and drift_check reads cleaned_regions from an earlier run: the default IO manager's
    directory (<local_artifact_storage>/storage) must be on a claim every run pod mounts, not in a pod's own disk."""
    config = _production_instance_config()
    base_dir = Path(config["local_artifact_storage"]["config"]["base_dir"])
    launcher = config["run_launcher"]["config"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"] for v in launcher["volumes"] if "persistentVolumeClaim" in v
    }
    on = [m for m in launcher["volume_mounts"] if base_dir.is_relative_to(m["mountPath"])]
    assert [claims[m["name"]] for m in on] == ["election-data"]
    instance_config = {"local_artifact_storage": config["local_artifact_storage"]}
    with dg.instance_for_test(overrides=instance_config) as instance:
        assert instance.storage_directory() == str(base_dir / "storage")


@pytest.fixture(scope="module")
def postgres_run(databases, new_sandbox, tmp_path_factory):
    sandbox = new_sandbox("postgres")
    sandbox.env["MLFLOW_TRACKING_URI"] = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{databases['mlflow']}"
    # The pods' layout: the real-mode store is a directory inside the synthetic store's (/models/real in /models).
    sandbox.env["ELECTION_REAL_MODEL_STORE"] = str(sandbox.settings().model_store_dir / "real")
    pg_env = {
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": databases["dagster"],
    }
    # The production file's storage section as is; runs launch in this process instead of as Kubernetes Jobs, and
    # the IO manager's files go to this test's home instead of the run pods' shared /data claim.
    config = _production_instance_config()
    del config["run_launcher"]
    home = tmp_path_factory.mktemp("dagster_home")
    config["local_artifact_storage"]["config"]["base_dir"] = str(home)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    sandbox.env.update(pg_env)
    with sandbox.environment(), dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_assets(sandbox, SMALL, instance=instance)
        yield {"sandbox": sandbox, "instance": instance, "result": result, "databases": databases}


@pytest.fixture(scope="module")
def postgres_real_run(postgres_run):
    """Then the real-mode graph, as `make real` runs it (every job, every partition, in order), on the same
    PostgreSQL-backed instance and environment: one production instance holds both graphs."""
    run_all(postgres_run["instance"])  # in the environment postgres_run set up
    return postgres_run


def test_instance_storage_is_postgres(postgres_run):
    instance = postgres_run["instance"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    # Nothing written to the pod's own filesystem: no compute logs (dagster.prod.yaml's compute_logs).
    assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"


def test_whole_graph_runs_and_is_read_back_from_postgres(postgres_run):
    instance, result = postgres_run["instance"], postgres_run["result"]
    assert result.success
    (run,) = instance.get_runs(filters=dg.RunsFilter(run_ids=[result.run_id]))
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "election_pipeline"
    job = postgres_run["sandbox"].definitions().resolve_job_def("election_pipeline")
    for key in job.asset_layer.selected_asset_keys:
        record = instance.fetch_materializations(key, limit=1).records
        assert record and record[0].run_id == result.run_id, key
    check_key = dg.AssetCheckKey(dg.AssetKey("raw_regions"), "raw_regions_schema")
    evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])[check_key]
    assert evaluation.run_id == result.run_id

    query = "SELECT count(*) FROM runs WHERE run_id = %s"
    assert _fetch_one(postgres_run["databases"]["dagster"], query, (result.run_id,)) == (1,)


def test_mlflow_tracking_and_registry_live_in_postgres(postgres_run):
    settings = postgres_run["sandbox"].settings()
    assert settings.mlflow_tracking_uri.startswith("postgresql://")
    client = MlflowClient(settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    manifest = ModelStore(settings.model_store_dir).load().manifest
    assert str(champion.version) == manifest.source_run.registered_version
    assert _fetch_one(postgres_run["databases"]["mlflow"], "SELECT count(*) FROM model_versions")[0] >= 1


def test_real_mode_graph_runs_and_is_read_back_from_postgres(postgres_real_run):
    instance, sandbox = postgres_real_run["instance"], postgres_real_run["sandbox"]
    assert instance.get_materialized_partitions(dg.AssetKey("election_features")) == {str(y) for y in FEATURE_YEARS}
    assert instance.get_materialized_partitions(dg.AssetKey("walk_forward_backtest")) == {
        str(y) for y in BACKTEST_YEARS
    }
    forecast = instance.get_latest_materialization_event(dg.AssetKey("next_election_forecast"))
    assert forecast is not None
    # One successful run per job and partition, stored in PostgreSQL.
    run_ids = []
    for job_name, partitions in STEPS:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name))
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), job_name
        expected = {str(p) for p in partitions} if partitions else {None}
        assert {run.tags.get("dagster/partition") for run in runs} == expected, job_name
        assert len(runs) == len(expected), job_name
        run_ids.extend(run.run_id for run in runs)
    assert forecast.run_id in run_ids
    query = "SELECT count(*) FROM runs WHERE run_id = ANY(%s)"
    assert _fetch_one(postgres_real_run["databases"]["dagster"], query, (run_ids,)) == (len(run_ids),)

    # The model a real-mode API serves, published inside the synthetic store's directory, which still loads the
    # synthetic champion: the two stores share the model-store claim without getting in each other's way.
    settings = sandbox.settings()
    assert settings.real_model_store_dir.parent == settings.model_store_dir
    assert ModelStore(settings.real_model_store_dir).load().manifest.data_mode == REAL
    assert data_mode_of(ModelStore(settings.model_store_dir).load().manifest) is SYNTHETIC_MODE
    # The backtest years and the forecast are MLflow runs in PostgreSQL.
    query = "SELECT count(*) FROM runs r JOIN experiments e USING (experiment_id) WHERE e.name = %s"
    (count,) = _fetch_one(postgres_real_run["databases"]["mlflow"], query, (f"{settings.mlflow_experiment}-real",))
    assert count == len(BACKTEST_YEARS) + 1
