"""Progressive delivery as the notebooks drive and observe it: the load a canary gets, its rollout over time."""
