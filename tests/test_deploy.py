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


def test_ingress_agrees_with_the_service_and_the_body_limit():
    deployment, service, ingress = load("deployment.yaml"), load("service.yaml"), load("ingress.yaml")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p.get("name") for p in service["spec"]["ports"]}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    body_mib = int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"].rstrip("m"))
    assert body_mib * 1024 * 1024 == int(env["BACKPROP_MAX_BODY_BYTES"])
    assert "http_503" in ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-next-upstream"]


def test_a_worker_fits_its_pod():
    from app.api.body_limit import PARSE_MEMORY_FACTOR
    from app.config import Settings

    deployment = load("deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    pod_bytes = int(limit[:-2]) * 2**30
    workers = int(env["BACKPROP_WORKERS"])
    s = Settings()
    # What one worker can hold at once: its idle size (~100 MiB), its admitted computations, and
    # the largest body's parse when admitted alone on an idle worker.
    per_worker = 100 * 2**20 + max(s.max_inflight_memory, int(env["BACKPROP_MAX_BODY_BYTES"]) * PARSE_MEMORY_FACTOR)
    assert workers * per_worker <= pod_bytes, (workers, per_worker, pod_bytes)
