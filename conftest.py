"""Shared pytest fixtures: one real materialization of the whole graph on small data, and one of the real-mode
graph, each reused by the pipeline tests and the API tests (which serve the models they publish)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# The default training size (the Bayes-gap test needs ~4,000 held-out rows to be meaningful) but short searches.
SMALL_RUN_CONFIG = {
    "ops": {
        "raw_regions": {"config": {"n_regions": 20_000, "seed": 11}},
        "current_regions": {"config": {"n_regions": 1_500, "seed": 12}},
        "candidate_logistic_regression": {"config": {"search_iterations": 3}},
        "candidate_random_forest": {"config": {"search_iterations": 2}},
        "candidate_xgboost": {"config": {"search_iterations": 3}},
    }
}


# Tests marked `slow`, so that `pytest -m "not slow"` (`make quick`) runs only the fast unit tests:
# - any test that uses a session fixture below that materializes a whole graph (materialized_pipeline: the synthetic
#   graph; real_pipeline: every real-mode job and partition), directly or through another fixture;
# - deployment_tests/: manifests rendered with kubectl, the Dockerfile, the SBOM, promtool, the whole graph on
#   PostgreSQL;
# - the modules whose module-scoped fixture runs the graph or its training several times (every test there uses it);
# - the real-mode backtests (a forecaster fitted per backtest year, and its variants).
WHOLE_GRAPH_FIXTURES = frozenset({"materialized_pipeline", "real_pipeline"})
# A test file or folder (relative to this directory) -> the fixtures that make a test there slow (None: all its tests).
SLOW_TESTS: dict[str, frozenset[str] | None] = {
    "deployment_tests/": None,
    "election_assets_tests/test_drift_loop.py": None,
    "election_assets_tests/test_idempotency.py": None,
    "election_assets_tests/test_promotion.py": None,
    "election_assets_tests/test_real_model.py": frozenset({"backtests", "figures"}),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).resolve().parent
    for item in items:
        path = item.path.resolve()
        where = path.relative_to(root).as_posix() if path.is_relative_to(root) else ""
        slow = bool(WHOLE_GRAPH_FIXTURES.intersection(item.fixturenames))
        for prefix, fixtures in SLOW_TESTS.items():
            if where.startswith(prefix) and (fixtures is None or fixtures.intersection(item.fixturenames)):
                slow = True
        if slow:
            item.add_marker(pytest.mark.slow)


@dataclass
class PipelineSandbox:
    """An isolated data directory, MLflow store and Dagster instance for one test session or test."""

    data_dir: Path
    env: dict[str, str]

    def settings(self):
        from election_assets.settings import PipelineSettings

        return PipelineSettings.from_env(self.env)

    @contextmanager
    def environment(self) -> Iterator[None]:
        """Point the process at this sandbox, as a deployment's environment variables would."""
        previous = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def definitions(self):
        """The project's Definitions, loaded with this sandbox's environment (resources read it at load time)."""
        from election_assets.definitions import defs

        with self.environment():
            return defs()


def make_sandbox(root: Path) -> PipelineSandbox:
    data_dir = root / "data"
    env = {
        "ELECTION_DATA_DIR": str(data_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
    }
    (data_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    return PipelineSandbox(data_dir=data_dir, env=env)


@pytest.fixture(scope="session")
def session_sandbox(tmp_path_factory) -> PipelineSandbox:
    return make_sandbox(tmp_path_factory.mktemp("pipeline"))


@dataclass
class MaterializedPipeline:
    sandbox: PipelineSandbox
    result: object  # dagster ExecuteInProcessResult


@pytest.fixture(scope="session")
def materialized_pipeline(session_sandbox: PipelineSandbox) -> Iterator[MaterializedPipeline]:
    """The whole asset graph materialized once, in one run, on small synthetic data."""
    import dagster as dg

    job = session_sandbox.definitions().resolve_job_def("election_pipeline")
    with session_sandbox.environment():
        result = job.execute_in_process(run_config=SMALL_RUN_CONFIG, instance=dg.DagsterInstance.ephemeral())
    yield MaterializedPipeline(sandbox=session_sandbox, result=result)


@pytest.fixture
def sandbox(tmp_path) -> PipelineSandbox:
    """A fresh, empty sandbox for one test."""
    return make_sandbox(tmp_path)


@pytest.fixture(scope="session")
def new_sandbox(tmp_path_factory):
    """Make fresh sandboxes in fixtures wider than one test (module scope)."""
    return lambda name: make_sandbox(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def real_pipeline(tmp_path_factory) -> Iterator[tuple[PipelineSandbox, object]]:
    """``make real`` once, on a temporary Dagster instance: every real-mode job and partition, in order. Reused by
    the real-mode pipeline tests and by the API test that serves the model it publishes."""
    import dagster as dg

    from election_assets.real_mode import run_all

    sandbox = make_sandbox(tmp_path_factory.mktemp("real"))
    with dg.instance_for_test() as instance, sandbox.environment():
        run_all(instance)
        yield sandbox, instance


@pytest.fixture(scope="session")
def next_election_counties():
    """Real mode's county rows for the next election, built from the shipped files as the pipeline builds them."""
    from election_assets.real.features import NEXT_ELECTION, ElectionInputs

    return ElectionInputs.read().features(NEXT_ELECTION).frame
