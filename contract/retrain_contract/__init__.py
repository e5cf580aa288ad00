"""What both sides agree on: the operator (retrain_operator) and the workload (retrain_trainer) import
this package and never each other. Pure and small: no Kubernetes client, no ML library."""

__version__ = "0.1.0"
