"""How this code location executes a run: every step in the run's own process, which the run records as it starts.

In one process because each step of the multiprocess executor would pay the ~6 s import of Dagster, MLflow and the
model libraries again, which dwarfs the work on the default data sizes. The recorded process
(``election_assets.processes``) is how a run killed with its process (kill -9, an out-of-memory kill, a machine that
went down) is told from one still running: ``defs/automation/runs.py`` marks it failed, however it was launched.
"""

from collections.abc import Iterator

import dagster as dg

from election_assets.defs.tags import RUN_TAG_PREFIX
from election_assets.processes import ProcessIdentity

# Run tags naming the process that executes the run.
PROCESS_TAGS = {name: f"{RUN_TAG_PREFIX}process_{name}" for name in ("host", "pid", "started")}


def process_tags(identity: ProcessIdentity) -> dict[str, str]:
    return {PROCESS_TAGS[name]: str(getattr(identity, name)) for name in PROCESS_TAGS}


def recorded_process(tags: dict[str, str]) -> ProcessIdentity | None:
    """The process a run recorded, or None for a run that recorded none (run in a test, or not started yet)."""
    try:
        values = {name: tags[tag] for name, tag in PROCESS_TAGS.items()}
        return ProcessIdentity(host=values["host"], pid=int(values["pid"]), started=values["started"])
    except (KeyError, ValueError):
        return None


class ProcessRecordingExecutor(dg.Executor):
    """Dagster's in-process executor, which first tags the run with the process executing it."""

    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        plan_context.instance.add_run_tags(plan_context.run_id, process_tags(ProcessIdentity.current()))
        yield from self._inner.execute(plan_context, execution_plan)


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema)
def in_process_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    return ProcessRecordingExecutor(dg.in_process_executor.executor_creation_fn(init_context))
