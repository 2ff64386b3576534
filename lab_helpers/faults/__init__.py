"""Fault injection for the exit test: the four causes of a service stuck Ready=False, as edits to its spec."""
from .inject import Injection, clear_fault, inject_fault, wait_for_symptom
from .scenarios import SCENARIOS, Scenario, normalise, pick_scenario, scenario

__all__ = ["Injection", "SCENARIOS", "Scenario", "clear_fault", "inject_fault", "normalise", "pick_scenario",
           "scenario", "wait_for_symptom"]
