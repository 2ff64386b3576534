"""Prometheus for the lab: the Operator's config generation (`config`), the local server process
(`process`) and the PromQL client notebooks use on both targets (`client`).

Submodules are imported where needed: the control plane needs `config` and `process` without
pandas, a notebook needs only `client`.
"""
