"""XGBoost and LightGBM in the trainer: native categoricals, continued boosting, the device, ONNX."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retrain_contract.api.estimators import ESTIMATORS, estimator_problem
from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.errors import DataError
from retrain_operator.core.jobs import PolicyRef, RunRequest, run_config
from retrain_operator.core.runs import Trigger
from retrain_trainer import boosting, onnx_export, strategies
from retrain_trainer import config as config_module
from retrain_trainer.model import ESTIMATOR_STEP, PREPARE_STEP, new_estimator, new_pipeline

from .policies import spec

FEATURES = ["amount", "visits", "plan"]
CLASSIFIERS = ["XGBClassifier", "LGBMClassifier"]
REGRESSORS = ["XGBRegressor", "LGBMRegressor"]


def rows(n: int, seed: int, plans: tuple[str, ...] = ("basic", "plus", "pro")) -> pd.DataFrame:
    """The label depends on the categorical `plan` as much as on the numbers."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"amount": rng.normal(size=n), "visits": rng.integers(0, 20, n).astype(float),
                          "plan": rng.choice(plans, n)})
    score = frame["amount"] + np.where(frame["plan"] == "pro", 1.5, 0.0) - np.where(frame["plan"] == "basic", 1.0, 0)
    frame["churned"] = np.where(score > 0.2, "yes", "no")
    frame["spend"] = 3.0 * score + 0.1 * frame["visits"]
    return frame


def run_config_for(estimator: str, task: str = "classification", gpus: int | None = None, **params):
    training = {"strategy": "incremental", **({"gpus": gpus} if gpus is not None else {})}
    return config_module.parse(json.dumps({
        "policy": {"namespace": "ml", "name": "p"}, "version": "v2", "parentVersion": "v1", "trigger": {},
        "model": {"estimator": estimator, "task": task, "target": "churned" if task == "classification" else "spend",
                  "params": params},
        "data": {"history": "s3://data/h/"}, "training": training, "storage": {"bucket": "models"}}))


def fitted(estimator: str, frame: pd.DataFrame, **params):
    config = run_config_for(estimator, "classification" if estimator in CLASSIFIERS else "regression", **params)
    pipeline = new_pipeline(estimator, config.params, frame, FEATURES)
    strategies.fit(pipeline, strategies.Selection(frame), FEATURES, config.target, incremental=False, config=config)
    return pipeline, config


def test_the_four_are_allow_listed_with_their_task_and_continue_by_boosting():
    assert {name: (ESTIMATORS[name].task, ESTIMATORS[name].incremental) for name in [*CLASSIFIERS, *REGRESSORS]} == {
        "XGBClassifier": ("classification", "boosting"), "LGBMClassifier": ("classification", "boosting"),
        "XGBRegressor": ("regression", "boosting"), "LGBMRegressor": ("regression", "boosting")}
    assert estimator_problem("XGBClassifier", "classification", "incremental") is None
    assert "regression estimator" in estimator_problem("LGBMRegressor", "classification", "full")


@pytest.mark.parametrize("estimator", CLASSIFIERS)
def test_classifiers_take_string_labels_and_split_categories_natively(estimator):
    pipeline, _ = fitted(estimator, rows(2000, 1))
    prepared = pipeline.named_steps[PREPARE_STEP].transform(rows(5, 2)[FEATURES])
    assert prepared.shape == (5, 3)  # one code column for `plan`, no one-hot
    model = pipeline.named_steps[ESTIMATOR_STEP]
    assert [str(c) for c in model.classes_] == ["no", "yes"]
    assert set(pipeline.predict(rows(50, 3)[FEATURES])) <= {"no", "yes"}
    if estimator == "XGBClassifier":
        assert model.get_params()["feature_types"] == ["q", "q", "c"] and model.get_params()["enable_categorical"]
    else:
        infos = model.booster_.dump_model()["feature_infos"]  # a categorical feature lists its codes
        assert {0, 1, 2} <= set(infos["Column_2"]["values"]) and infos["Column_0"]["values"] == []
    test = rows(1000, 4)
    assert (pipeline.predict(test[FEATURES]) == test["churned"]).mean() > 0.9


@pytest.mark.parametrize("estimator", [*CLASSIFIERS, *REGRESSORS])
def test_incremental_adds_n_estimators_trees_to_the_parents_with_the_parents_category_codes(estimator):
    parent, config = fitted(estimator, rows(2000, 1), n_estimators=30)
    codes = [list(c) for c in parent.named_steps[PREPARE_STEP].named_transformers_["categorical"].categories_]
    assert boosting.trees(parent.named_steps[ESTIMATOR_STEP]) == 30
    # The new batch has only two of the plans, in another order of appearance, and one plan never seen.
    batch = pd.concat([rows(800, 5, plans=("pro", "plus")), rows(200, 6, plans=("enterprise",))])
    child = strategies.continue_from(parent, config)
    strategies.fit(child, strategies.Selection(batch), FEATURES, config.target, incremental=True, config=config)
    assert boosting.trees(child.named_steps[ESTIMATOR_STEP]) == 60
    assert [list(c) for c in child.named_steps[PREPARE_STEP].named_transformers_["categorical"].categories_] == codes
    assert len(child.predict(batch[FEATURES])) == len(batch)  # "enterprise" is a missing value, not an error


@pytest.mark.parametrize("estimator", CLASSIFIERS)
def test_continued_boosting_refuses_new_classes_and_missing_ones(estimator):
    parent, config = fitted(estimator, rows(1000, 1))
    batch = rows(300, 2)
    child = strategies.continue_from(parent, config)
    with pytest.raises(DataError, match=r"labels \['maybe'\] are new"):
        strategies.fit(child, strategies.Selection(batch.assign(churned="maybe")), FEATURES, "churned",
                       incremental=True, config=config)
    with pytest.raises(DataError, match=r"no example of \['no'\]"):
        strategies.fit(child, strategies.Selection(batch.assign(churned="yes")), FEATURES, "churned",
                       incremental=True, config=config)


@pytest.mark.parametrize("gpus, detected, device", [(1, "cuda", "cuda"), (0, "cuda", "cpu"), (1, "none", "cpu")])
def test_xgboost_trains_on_cuda_only_when_the_policy_asks_and_a_gpu_is_there(gpus, detected, device):
    chosen = boosting.choose_device("XGBClassifier", gpus, detected)
    assert chosen.name == device and chosen.reason
    estimator = new_estimator("XGBClassifier", {"n_estimators": 10, "device": "cpu"}, chosen)
    assert estimator.get_xgb_params()["device"] == device  # the trainer's decision, over the policy's params
    assert boosting.choose_device("LGBMClassifier", gpus, detected).name == "cpu"


def test_the_gpu_request_reaches_the_run_configuration_and_a_continued_model():
    def configured(resources):
        training = {"strategy": "incremental", **({"resources": resources} if resources else {})}
        policy = PolicySpec.from_dict(spec(training=training))
        run = RunRequest("v2", "v1", Trigger("manual", "annotation", "2026-11-24T10:00:00Z", "now"))
        return run_config(PolicyRef("churn", "ml", "uid-1"), policy, run)["training"]

    assert configured({"limits": {"nvidia.com/gpu": "2"}})["gpus"] == 2
    assert "gpus" not in configured(None)  # a CPU policy's configuration is as it was
    parent, config = fitted("XGBClassifier", rows(500, 1), n_estimators=5)
    assert config.gpus == 0 and run_config_for("XGBClassifier", gpus=2).gpus == 2
    child = strategies.continue_from(parent, config, boosting.choose_device("XGBClassifier", 2, "cuda"))
    assert child.named_steps[ESTIMATOR_STEP].get_xgb_params()["device"] == "cuda"


def test_the_device_used_is_read_from_the_fitted_booster():
    pipeline, _ = fitted("XGBClassifier", rows(300, 1), n_estimators=5)
    planned = boosting.choose_device("XGBClassifier", 0, "none")
    assert boosting.device_used(pipeline.named_steps[ESTIMATOR_STEP], planned) == "cpu"


def _nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    return listed.returncode == 0 and "GPU" in listed.stdout


@pytest.mark.skipif(not _nvidia_gpu(), reason="needs an NVIDIA GPU: nvidia-smi is absent or lists none here")
def test_on_a_gpu_xgboost_fits_and_continues_with_cuda():
    device = boosting.choose_device("XGBClassifier", 1, "cuda")
    frame = rows(5000, 1)
    config = run_config_for("XGBClassifier", gpus=1, n_estimators=20)
    parent = new_pipeline("XGBClassifier", config.params, frame, FEATURES, device)
    strategies.fit(parent, strategies.Selection(frame), FEATURES, "churned", incremental=False, config=config)
    assert boosting.device_used(parent.named_steps[ESTIMATOR_STEP], device) == "cuda"
    child = strategies.continue_from(parent, config, device)
    strategies.fit(child, strategies.Selection(rows(2000, 2)), FEATURES, "churned", incremental=True, config=config)
    assert boosting.trees(child.named_steps[ESTIMATOR_STEP]) == 40
    assert boosting.device_used(child.named_steps[ESTIMATOR_STEP], device) == "cuda"


@pytest.mark.parametrize("continued", [False, True])
@pytest.mark.parametrize("estimator", [*CLASSIFIERS, *REGRESSORS])
def test_onnx_conversion_is_verified_on_held_out_rows_unseen_categories_and_missing_numbers(estimator, continued):
    pipeline, config = fitted(estimator, rows(2000, 1), n_estimators=20)
    if continued:  # 40 trees, n_estimators 20: the converter must take all 40
        pipeline = strategies.continue_from(pipeline, config)
        strategies.fit(pipeline, strategies.Selection(rows(1000, 9)), FEATURES, config.target, incremental=True,
                       config=config)
    held_out = pd.concat([rows(300, 7), rows(20, 8, plans=("enterprise",))], ignore_index=True)
    held_out.loc[:9, "amount"] = np.nan
    data, record = onnx_export.export(pipeline, rows(2000, 1), held_out, FEATURES, config.task)
    assert data is not None and record["verified"] is True and record["rows"] == 320
    assert record["file"] == "model.onnx" and record["converter"].startswith("skl2onnx ") and record["opset"] == 17
    if config.task == "classification":
        assert record["labelsIdentical"] is True and record["maxProbabilityDifference"] <= record["tolerance"] == 1e-4
    else:
        assert record["maxValueDifference"] <= record["tolerance"]
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [
        ("amount", "tensor(float)", 1), ("visits", "tensor(float)", 1), ("plan", "tensor(string)", 1)]
    if config.task == "classification":
        labels, probabilities = session.run(None, onnx_export.feed(held_out.head(3), FEATURES, ["amount", "visits"]))
        assert probabilities.shape == (3, 2) and set(labels.reshape(-1)) <= {"no", "yes"}
        expected = pipeline.predict_proba(held_out.head(3)[FEATURES])  # columns in the order of model.classes
        assert np.abs(probabilities - expected).max() <= 1e-4


def test_a_conversion_outside_the_tolerance_ships_no_onnx_and_says_why(monkeypatch):
    pipeline, _ = fitted("XGBClassifier", rows(1000, 1))
    monkeypatch.setattr(onnx_export, "PROBABILITY_TOLERANCE", 0.0)
    held_out = rows(200, 2)
    data, record = onnx_export.export(pipeline, rows(1000, 1), held_out, FEATURES, "classification")
    # float32 sums differ from XGBoost's own by a rounding error: not exactly 0
    assert data is None and record["verified"] is False and "probabilities differ by up to" in record["reason"]


def test_a_pipeline_the_converter_refuses_ships_no_onnx_and_says_why():
    frame = rows(500, 1)
    config = run_config_for("HistGradientBoostingClassifier", n_estimators=None)
    pipeline = new_pipeline("HistGradientBoostingClassifier", {"max_iter": 10}, frame, FEATURES)
    strategies.fit(pipeline, strategies.Selection(frame), FEATURES, "churned", incremental=False, config=config)
    data, record = onnx_export.export(pipeline, frame, rows(100, 2), FEATURES, "classification")
    assert data is None and record == {"verified": False, "reason": record["reason"]}
    assert record["reason"].startswith("conversion failed:")


def test_a_pipeline_with_categories_ships_onnx_and_a_missing_category_answers_as_in_the_pipeline():
    frame = rows(1000, 1)
    frame.loc[frame.index[::10], "plan"] = None  # missing categories in training ...
    held_out = rows(300, 2)
    held_out.loc[held_out.index[::7], "plan"] = None  # ... and in the rows the conversion is checked on
    held_out.loc[held_out.index[::11], "plan"] = "enterprise"  # and a category never seen
    pipeline = new_pipeline("LogisticRegression", {}, frame, FEATURES)
    strategies.fit(pipeline, strategies.Selection(frame), FEATURES, "churned", incremental=False,
                   config=run_config_for("LogisticRegression", n_estimators=None))
    data, record = onnx_export.export(pipeline, frame, held_out, FEATURES, "classification")
    assert data is not None, record
    assert record["verified"] is True and record["labelsIdentical"] is True and record["rows"] == 300
    assert record["maxProbabilityDifference"] <= onnx_export.PROBABILITY_TOLERANCE
    # The pipeline itself keeps its imputer (model.joblib is unchanged by the conversion).
    assert pipeline.named_steps["prepare"].named_transformers_["categorical"].named_steps["impute"] is not None


@pytest.mark.parametrize("estimator", ["SGDClassifier", "LogisticRegression"])
def test_scikit_learn_pipelines_of_numbers_ship_onnx_too(estimator):
    numeric = ["amount", "visits"]
    frame = rows(1000, 1)
    params = {"loss": "log_loss", "random_state": 0} if estimator == "SGDClassifier" else {}
    pipeline = new_pipeline(estimator, params, frame, numeric)
    strategies.fit(pipeline, strategies.Selection(frame), numeric, "churned", incremental=False,
                   config=run_config_for(estimator))
    data, record = onnx_export.export(pipeline, frame, rows(300, 2), numeric, "classification")
    assert data is not None and record["verified"] is True and record["labelsIdentical"] is True


def test_a_scikit_learn_run_never_loads_xgboost_or_lightgbm():
    """Both load only for their own policies (XGBoost's import alone takes about half a second)."""
    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from retrain_trainer import train, onnx_export, strategies\n"
        "from retrain_trainer.model import new_pipeline\n"
        "frame = pd.DataFrame({'x': np.arange(200.0), 'y': ['a', 'b'] * 100})\n"
        "pipeline = new_pipeline('SGDClassifier', {'loss': 'log_loss'}, frame, ['x']).fit(frame[['x']], frame['y'])\n"
        "assert onnx_export.export(pipeline, frame, frame, ['x'], 'classification')[0] is not None\n"
        "print(sorted(m for m in ('xgboost', 'lightgbm') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("estimator", CLASSIFIERS)
def test_the_window_strategys_recency_weights_reach_the_boosters(estimator):
    """Old rows with the opposite answers and almost no weight: the model learns the recent rule."""
    old, recent = rows(1500, 1), rows(1500, 2)
    old["churned"] = np.where(old["churned"] == "yes", "no", "yes")
    frame = pd.concat([old, recent], ignore_index=True)
    config = run_config_for(estimator)
    probe = rows(1000, 3)

    def accuracy(weights):
        pipeline = new_pipeline(estimator, {"n_estimators": 30}, frame, FEATURES)
        strategies.fit(pipeline, strategies.Selection(frame, weights=weights), FEATURES, "churned",
                       incremental=False, config=config)
        return float((pipeline.predict(probe[FEATURES]) == probe["churned"]).mean())

    recency = np.where(np.arange(len(frame)) < len(old), 0.01, 1.0)
    assert accuracy(recency) > 0.85 > 0.65 > accuracy(np.ones(len(frame)))
