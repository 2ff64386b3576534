"""The portfolio: what a run of the series proved (run record, checkpoint comparison) and the static site showing it."""
