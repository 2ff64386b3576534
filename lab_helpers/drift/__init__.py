"""Drift detection on the prediction distribution, without ground truth.

The inference logger sends each request and response as a CloudEvent to `receiver`, which stores
them; the drift job reads a window of them back (`receiver.read_window`) and compares it with a
reference window (`statistics`).
"""
