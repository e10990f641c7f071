"""The election forecasting serving API: a slim Litestar service over the model store.

It imports only NumPy, ``election_assets.core`` and its web stack (Litestar, msgspec, prometheus_client, uvicorn):
never Dagster, MLflow, Evidently, pandas, scikit-learn or XGBoost.
"""

__version__ = "0.1.0"
SERVICE_NAME = "election-forecasting-api"
