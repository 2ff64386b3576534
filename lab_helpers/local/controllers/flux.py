"""Flux source- and helm-controller: sources become Ready, HelmReleases install charts in dependency order."""
from __future__ import annotations

import copy
from typing import Any

from ..catalogue import BUILTIN_RUNTIMES, CHARTS, crd_object
from .base import DONE, Controller, Result, condition, is_true, ns


def _get(values: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(values, dict):
            return None
        values = values.get(key)
    return values


def chart_name(release: dict[str, Any], source: dict[str, Any] | None) -> str | None:
    """The chart a release installs: from its HelmChart template, or the last path segment of an OCI URL."""
    chart = (((release["spec"].get("chart") or {}).get("spec") or {}).get("chart"))
    if chart:
        return chart
    if source and source["kind"] == "OCIRepository":
        return source["spec"]["url"].rstrip("/").rsplit("/", 1)[-1]
    return None


class SourceController(Controller):
    kinds = ("HelmRepository", "OCIRepository")

    async def reconcile(self, source: dict[str, Any]) -> Result:
        spec = source["spec"]
        ref = spec.get("ref") or {}
        revision = ref.get("tag") or ref.get("semver") or ref.get("digest") or "latest"
        where = spec.get("url", "")
        prev = (source.get("status") or {}).get("conditions")
        status = {"observedGeneration": source["metadata"]["generation"], "url": where,
                  "conditions": [condition("Ready", True, "Succeeded",
                                           f"stored artifact for revision '{revision}' (local catalogue stands in "
                                           f"for {where})", prev)]}
        if source["kind"] == "OCIRepository":
            status["artifact"] = {"revision": revision, "path": where}
        if self.store.set_status(source["kind"], ns(source), source["metadata"]["name"], status) and not prev:
            self.store.record_event(source, "NewArtifact", f"stored artifact for revision '{revision}'")
        return DONE


class HelmReleaseController(Controller):
    """Install when the source is Ready and every `dependsOn` release is Ready, like helm-controller."""

    kinds = ("HelmRelease",)
    # A release waits on its source, its dependsOn releases and the CRDs other charts install.
    watches = ("HelmRepository", "OCIRepository", "HelmRelease", "CustomResourceDefinition", "ClusterServingRuntime")

    async def reconcile(self, release: dict[str, Any]) -> Result:
        name, namespace = release["metadata"]["name"], ns(release)
        prev_status = release.get("status") or {}
        prev = prev_status.get("conditions")
        source = self._source(release)
        chart = chart_name(release, source)
        version = self._version(release, source)
        blocker = self._blocker(release, source, chart)
        if blocker:
            reason, message = blocker
            status = {**prev_status, "observedGeneration": release["metadata"]["generation"],
                      "conditions": [condition("Ready", False, reason, message, prev)]}
            if self.store.set_status("HelmRelease", namespace, name, status) and status != prev_status:
                self.store.record_event(release, reason, message, "Warning" if reason == "InstallFailed" else "Normal")
            return DONE
        installed_for = prev_status.get("lastAttemptedGeneration")
        if is_true(release) and installed_for == release["metadata"]["generation"]:
            self._install(release, chart)  # level-triggered: recreate anything deleted by hand
            return DONE
        self._install(release, chart)
        target_ns = release["spec"].get("targetNamespace") or namespace
        message = (f"Helm install succeeded for release {target_ns}/{release['spec'].get('releaseName', name)}.v1 "
                   f"with chart {chart}@{version}")
        status = {"observedGeneration": release["metadata"]["generation"],
                  "lastAttemptedGeneration": release["metadata"]["generation"],
                  "lastAttemptedRevision": version,
                  "history": [{"chartName": chart, "chartVersion": version, "status": "deployed"}],
                  "conditions": [condition("Ready", True, "InstallSucceeded", message, prev),
                                 condition("Released", True, "InstallSucceeded", message, prev)]}
        self.store.set_status("HelmRelease", namespace, name, status)
        self.store.record_event(release, "InstallSucceeded", message)
        return DONE

    def _source(self, release: dict[str, Any]) -> dict[str, Any] | None:
        spec = release["spec"]
        ref = spec.get("chartRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
        if not ref:
            return None
        return self.store.find(ref.get("kind", ""), ref.get("namespace") or ns(release), ref.get("name", ""))

    def _version(self, release: dict[str, Any], source: dict[str, Any] | None) -> str:
        chart_spec = (release["spec"].get("chart") or {}).get("spec") or {}
        if chart_spec.get("version"):
            return chart_spec["version"]
        ref = (source or {}).get("spec", {}).get("ref") or {}
        return ref.get("tag") or ref.get("semver") or "latest"

    def _blocker(self, release: dict[str, Any], source: dict[str, Any] | None,
                 chart: str | None) -> tuple[str, str] | None:
        spec = release["spec"]
        ref = spec.get("chartRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
        if source is None:
            return "SourceNotReady", f"{ref.get('kind', 'source')} '{ref.get('namespace') or ns(release)}/" \
                                     f"{ref.get('name', '?')}' not found"
        if not is_true(source):
            return "SourceNotReady", f"{source['kind']} '{ns(source)}/{source['metadata']['name']}' is not ready"
        for dep in spec.get("dependsOn") or []:
            other = self.store.find("HelmRelease", dep.get("namespace") or ns(release), dep["name"])
            if not is_true(other):
                return "DependencyNotReady", f"dependency '{dep.get('namespace') or ns(release)}/{dep['name']}' " \
                                             "is not ready"
        if chart not in CHARTS:
            return "InstallFailed", f"chart {chart!r} is not in the local target's catalogue " \
                                    f"(known: {', '.join(sorted(CHARTS))})"
        for needed in CHARTS[chart].needs_crds_of:
            for crd in CHARTS[needed].crds:
                if self.store.find("CustomResourceDefinition", "", crd.name) is None:
                    return "InstallFailed", (f"Helm install failed for release {release['metadata']['name']}: "
                                             f"no matches for kind \"{crd.kind}\" in version "
                                             f"\"{crd.group}/{crd.versions[0]}\" (install {needed} first)")
        return None

    def _install(self, release: dict[str, Any], chart: str) -> None:
        spec = CHARTS[chart]
        for crd in spec.crds:
            if self.store.find("CustomResourceDefinition", "", crd.name) is None:
                self.store.apply(crd_object(crd, chart))
        if spec.runtimes and _get(release["spec"].get("values") or {}, "kserve.servingruntime.enabled"):
            for runtime in BUILTIN_RUNTIMES:
                if self.store.find("ClusterServingRuntime", "", runtime["metadata"]["name"]) is None:
                    self.store.apply(copy.deepcopy(runtime))
