"""retrain-operator: keeps ML models fresh on Kubernetes."""

__version__ = "0.1.0"
