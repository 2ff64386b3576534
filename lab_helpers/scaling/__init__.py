"""Autoscaling as the notebooks observe it: replicas over time, and the way in that counts a request."""
