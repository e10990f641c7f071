"""The Dagster code location: everything under ``defs/`` plus the executor.

Steps run in one process by default: each step of the multiprocess executor would pay the ~6 s import of
Dagster, MLflow and the model libraries again, which dwarfs the work on the default data sizes.
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=dg.in_process_executor),
    )
