"""Election forecasting platform: the Dagster code location and the pure modules it shares with the API.

Importing this package (or ``election_assets.core``) must stay free of Dagster, MLflow and Evidently:
the serving API imports ``election_assets.core`` and nothing else from here.
"""
