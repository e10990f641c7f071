"""The production configuration for real: the whole graph on a Dagster instance stored in PostgreSQL (the storage
section of dagster.prod.yaml) with the MLflow tracking store in PostgreSQL too. Fresh databases per run, dropped
afterwards. Needs the PostgreSQL on 127.0.0.1:5432 that the development and CI machines run."""

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

from election_assets.core.model_store import ModelStore
from election_assets_tests.helpers import run_assets

ROOT = Path(__file__).resolve().parents[1]
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
    return yaml.safe_load((ROOT / "dagster.prod.yaml").read_text())


def test_production_run_launcher_config_is_valid_for_dagster_k8s():
    launcher = _production_instance_config()["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    os.environ.setdefault("DAGSTER_K8S_JOB_NAMESPACE", "election")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors


@pytest.fixture(scope="module")
def postgres_run(databases, new_sandbox, tmp_path_factory):
    sandbox = new_sandbox("postgres")
    sandbox.env["MLFLOW_TRACKING_URI"] = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{databases['mlflow']}"
    pg_env = {
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": databases["dagster"],
    }
    # The production file's storage section as is; runs launch in this process instead of as Kubernetes Jobs.
    config = _production_instance_config()
    del config["run_launcher"]
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    sandbox.env.update(pg_env)
    with sandbox.environment(), dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_assets(sandbox, SMALL, instance=instance)
        yield {"sandbox": sandbox, "instance": instance, "result": result, "databases": databases}


def test_instance_storage_is_postgres(postgres_run):
    instance = postgres_run["instance"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"


def test_whole_graph_runs_and_is_read_back_from_postgres(postgres_run):
    instance, result = postgres_run["instance"], postgres_run["result"]
    assert result.success
    (run,) = instance.get_runs(filters=dg.RunsFilter(run_ids=[result.run_id]))
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "election_pipeline"
    assets = postgres_run["sandbox"].definitions().resolve_asset_graph().get_all_asset_keys()
    for key in assets:
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
    assert str(champion.version) == manifest["source_run"]["registered_version"]
    assert _fetch_one(postgres_run["databases"]["mlflow"], "SELECT count(*) FROM model_versions")[0] >= 1
