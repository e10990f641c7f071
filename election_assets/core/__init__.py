"""Pure building blocks shared by the pipeline and the API: nothing here imports Dagster, MLflow or Evidently.

The modules the API loads (``schema``, ``features``, ``compiled_model``, ``model_store``) need only NumPy and the
standard library, which keeps the serving image small and its cold start short.
"""
