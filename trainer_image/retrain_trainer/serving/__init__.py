"""The model server (`retrain-trainer serve`): one verified model version over HTTP."""
