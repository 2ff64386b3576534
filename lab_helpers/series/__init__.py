"""Notebook tooling: the series' files, the headless runner (papermill) and the output checks (nbval)."""
