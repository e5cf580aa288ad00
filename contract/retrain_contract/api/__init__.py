"""The RetrainPolicy API: names, the typed spec, its schema source and the estimator allow-list."""
