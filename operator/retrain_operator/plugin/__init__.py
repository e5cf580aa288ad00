"""`kubectl retrain`: the policies' state and the rollout commands, through the user's kubeconfig."""
