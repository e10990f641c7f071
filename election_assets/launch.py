"""Run a job of this code location in this process, as the Dagster UI would launch it.

``python -m election_assets.launch JOB [--config-json JSON] [--partition KEY]`` is what ``make demo`` and ``make real``
run. ``dagster job execute`` and ``dg launch`` also execute a job in their own process, but their runs carry no
code-location origin, so the UI's job pages (a job's Runs tab, the Overview timeline, the run-history bars) do not
count them as the job's runs. Runs launched here name the code location and repository ``workspace.yaml`` loads,
exactly as the UI's own runs do, and execute with the job's executor (which records the run's process).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

# Private Dagster API, because the public ``execute_job`` cannot give a run an origin: the origin the UI's launches
# record, and the in-process execution of a run created with one (what ``dagster api execute_run`` does).
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import PARTITION_NAME_TAG

_SOURCE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CodeLocation:
    """The code location ``workspace.yaml`` declares, the one ``make ui`` loads."""

    name: str
    module: str
    attribute: str

    @classmethod
    def from_workspace(cls) -> CodeLocation:
        # The working directory's workspace.yaml (the Dagster image's /opt/dagster/app), else the source checkout's.
        path = next(p for p in (Path.cwd() / "workspace.yaml", _SOURCE_ROOT / "workspace.yaml") if p.is_file())
        (entry,) = yaml.safe_load(path.read_text())["load_from"]
        module = entry["python_module"]
        return cls(name=module["location_name"], module=module["module_name"], attribute=module["attribute"])


def launch(
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, object] | None = None,
    partition_key: str | None = None,
) -> dg.JobExecutionResult:
    """Create a run of ``job_name`` with the code location's origin and execute it here; returns its result."""
    location = CodeLocation.from_workspace()
    repository = ReconstructableRepository.for_module(location.module, location.attribute, str(Path.cwd()))
    job = repository.get_reconstructable_job(job_name)
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location.name), SINGLETON_REPOSITORY_NAME), job_name
    )
    run = instance.create_run_for_job(
        job_def=job.get_definition(),
        run_config=run_config or {},
        tags={PARTITION_NAME_TAG: partition_key} if partition_key is not None else None,
        remote_job_origin=origin,
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m election_assets.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", help="a job of the code location, e.g. election_pipeline")
    parser.add_argument("--config-json", default="{}", help="run config as JSON")
    parser.add_argument("--partition", help="the partition to run, for a partitioned job")
    args = parser.parse_args(argv)
    try:
        run_config = json.loads(args.config_json)
    except ValueError as error:
        parser.error(f"--config-json is not valid JSON: {error}")
    with dg.DagsterInstance.get() as instance:
        result = launch(args.job, instance, run_config, args.partition)
    if not result.success:
        print(f"run {result.run_id} of {args.job} failed; see it in the Dagster UI (make ui)", file=sys.stderr)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
