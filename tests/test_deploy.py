"""The Kubernetes manifests validate against the Kubernetes schema and agree with the image."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
VERSION = kubernetes_validate.latest_version()


def load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_is_valid_kubernetes(path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest():
    broken = copy.deepcopy(load("deployment.yaml"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_probes_resources_and_user_match_the_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    deployment = load("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["ports"][0]["containerPort"] == int(re.search(r"^EXPOSE (\d+)", dockerfile, re.M).group(1))
    assert pod["securityContext"]["runAsUser"] == int(re.search(r"^USER (\d+)", dockerfile, re.M).group(1))


def test_service_and_autoscaler_point_at_the_deployment():
    deployment, service, hpa = load("deployment.yaml"), load("service.yaml"), load("hpa.yaml")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 1 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
