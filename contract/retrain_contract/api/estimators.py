"""The estimators a policy may name.

An allow-list, never an import path: a policy is user input, and importing an arbitrary
dotted name from it would run arbitrary code in the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "regression"]
# How an estimator continues from a parent model: `partial_fit` (online learners),
# `warm_start` (the estimator reuses its fitted state when refitted) or `boosting` (gradient
# boosting that adds trees to the parent's booster: XGBoost `xgb_model`, LightGBM `init_model`);
# None = cannot continue.
Incremental = Literal["partial_fit", "warm_start", "boosting"] | None


@dataclass(frozen=True)
class EstimatorInfo:
    module: str
    task: Task
    incremental: Incremental


ESTIMATORS: dict[str, EstimatorInfo] = {
    "LogisticRegression": EstimatorInfo("sklearn.linear_model", "classification", "warm_start"),
    "SGDClassifier": EstimatorInfo("sklearn.linear_model", "classification", "partial_fit"),
    "PassiveAggressiveClassifier": EstimatorInfo("sklearn.linear_model", "classification", "partial_fit"),
    "Perceptron": EstimatorInfo("sklearn.linear_model", "classification", "partial_fit"),
    "GaussianNB": EstimatorInfo("sklearn.naive_bayes", "classification", "partial_fit"),
    "MLPClassifier": EstimatorInfo("sklearn.neural_network", "classification", "partial_fit"),
    "RandomForestClassifier": EstimatorInfo("sklearn.ensemble", "classification", "warm_start"),
    "ExtraTreesClassifier": EstimatorInfo("sklearn.ensemble", "classification", "warm_start"),
    "GradientBoostingClassifier": EstimatorInfo("sklearn.ensemble", "classification", "warm_start"),
    "HistGradientBoostingClassifier": EstimatorInfo("sklearn.ensemble", "classification", "warm_start"),
    "XGBClassifier": EstimatorInfo("xgboost", "classification", "boosting"),
    "LGBMClassifier": EstimatorInfo("lightgbm", "classification", "boosting"),
    "DecisionTreeClassifier": EstimatorInfo("sklearn.tree", "classification", None),
    "KNeighborsClassifier": EstimatorInfo("sklearn.neighbors", "classification", None),
    "LinearRegression": EstimatorInfo("sklearn.linear_model", "regression", None),
    "Ridge": EstimatorInfo("sklearn.linear_model", "regression", None),
    "Lasso": EstimatorInfo("sklearn.linear_model", "regression", "warm_start"),
    "ElasticNet": EstimatorInfo("sklearn.linear_model", "regression", "warm_start"),
    "SGDRegressor": EstimatorInfo("sklearn.linear_model", "regression", "partial_fit"),
    "PassiveAggressiveRegressor": EstimatorInfo("sklearn.linear_model", "regression", "partial_fit"),
    "MLPRegressor": EstimatorInfo("sklearn.neural_network", "regression", "partial_fit"),
    "RandomForestRegressor": EstimatorInfo("sklearn.ensemble", "regression", "warm_start"),
    "ExtraTreesRegressor": EstimatorInfo("sklearn.ensemble", "regression", "warm_start"),
    "GradientBoostingRegressor": EstimatorInfo("sklearn.ensemble", "regression", "warm_start"),
    "HistGradientBoostingRegressor": EstimatorInfo("sklearn.ensemble", "regression", "warm_start"),
    "XGBRegressor": EstimatorInfo("xgboost", "regression", "boosting"),
    "LGBMRegressor": EstimatorInfo("lightgbm", "regression", "boosting"),
    "DecisionTreeRegressor": EstimatorInfo("sklearn.tree", "regression", None),
    "KNeighborsRegressor": EstimatorInfo("sklearn.neighbors", "regression", None),
}


def estimator_problem(name: str, task: str, strategy: str) -> str | None:
    """Why this estimator cannot serve this task and strategy, or None when it can."""
    info = ESTIMATORS.get(name)
    if info is None:
        return f"unknown estimator {name!r}; allowed: {', '.join(sorted(ESTIMATORS))}"
    if info.task != task:
        return f"{name} is a {info.task} estimator, but model.task is {task!r}"
    if strategy == "incremental" and info.incremental is None:
        return (f"{name} cannot continue from a parent model (no partial_fit, warm_start or booster to continue); "
                "use strategy full or window")
    return None
