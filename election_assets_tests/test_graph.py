from election_assets.core.model_store import ModelStore


def test_whole_graph_materializes_in_one_run(materialized_pipeline):
    result = materialized_pipeline.result
    assert result.success
    store = ModelStore(materialized_pipeline.sandbox.settings().model_store_dir)
    assert store.load().manifest["metrics"]["accuracy"] > 0.8
