"""The Dagster code location: everything under ``defs/``, executed in each run's own process
(``defs/execution.py``)."""

from pathlib import Path

import dagster as dg

from election_assets.defs.execution import in_process_executor


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=in_process_executor),
    )
