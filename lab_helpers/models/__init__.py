"""Model lifecycle: train the lab's models, register them in MLflow, run the local MLflow server."""
