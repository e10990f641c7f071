"""Data versioning: a content fingerprint of every table becomes its Dagster data version.

With code versions on the assets, Dagster then shows which assets are stale because their code or their
upstream data changed (the role DVC played in the reference system). The champion's manifest and its MLflow
run record the fingerprint of the features it was trained on.
"""

import hashlib

import dagster as dg
import pandas as pd


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every value (row order included); first 16 hex digits."""
    digest = hashlib.sha256()
    digest.update("|".join(f"{name}:{dtype}" for name, dtype in frame.dtypes.items()).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def table_output(
    frame: pd.DataFrame, metadata: dict | None = None, output_name: str = "result"
) -> dg.Output[pd.DataFrame]:
    """Output a table with its fingerprint as data version and the metadata every table carries."""
    version = fingerprint(frame)
    return dg.Output(
        frame,
        output_name=output_name,
        data_version=dg.DataVersion(version),
        metadata={
            "rows": len(frame),
            "columns": len(frame.columns),
            "fingerprint": version,
            "dagster/row_count": len(frame),
            "preview": dg.MetadataValue.md(frame.head(5).to_markdown(index=False)),
            **(metadata or {}),
        },
    )
