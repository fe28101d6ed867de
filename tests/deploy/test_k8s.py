"""The Kubernetes manifests (deploy/k8s): probes on /ready and /health, one port, resource requests, the
Qdrant URL from a Secret, Services that select what they should, and a canary that gets 5 % of requests.
Checked from the YAML itself, and built with `kubectl kustomize` when kubectl is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

K8S = REPO_ROOT / "deploy" / "k8s"
BASE = K8S / "base"
CANARY = K8S / "overlays" / "canary"


def load(folder: Path) -> dict[tuple[str, str], dict]:
    """The resources a kustomization lists, following other kustomizations, by (kind, name)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    found: dict[tuple[str, str], dict] = {}
    for entry in kustomization["resources"]:
        path = (folder / entry).resolve()
        if path.is_dir():
            found.update(load(path))
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"], doc["metadata"]["name"]] = doc
    return found


def pod_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_app_deployment_probes_ports_resources_and_secrets():
    resources = load(BASE)
    assert set(resources) == {("Deployment", "rag-qa"), ("Service", "rag-qa"), ("Ingress", "rag-qa")}
    deployment = resources["Deployment", "rag-qa"]
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    container = pod_container(deployment)
    assert container["ports"] == [{"name": "http", "containerPort": 8501}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    env = {e["name"]: e for e in container["env"]}
    assert env["RAG_QDRANT_URL"]["valueFrom"]["secretKeyRef"] == {"name": "rag-qa-qdrant", "key": "url"}
    assert env["RAG_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "rag-qa-api-keys"
    assert "value" not in env["RAG_QDRANT_URL"] and "value" not in env["RAG_API_KEYS"]  # no secret in the YAML
    oidc = [name for name in env if name.startswith("RAG_OIDC_")]  # the web login, when its Secret exists
    assert sorted(oidc) == ["RAG_OIDC_CLIENT_ID", "RAG_OIDC_CLIENT_SECRET", "RAG_OIDC_COOKIE_SECRET",
                            "RAG_OIDC_REDIRECT_URI", "RAG_OIDC_SERVER_METADATA_URL"]
    assert all(env[name]["valueFrom"]["secretKeyRef"] == {"name": "rag-qa-oidc", "key": env[name]["valueFrom"][
        "secretKeyRef"]["key"], "optional": True} for name in oidc)
    assert container["args"][:2] == ["rag", "serve"] and "8501" in container["args"]
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics" and annotations["prometheus.io/port"] == "8501"

    service = resources["Service", "rag-qa"]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = resources["Ingress", "rag-qa"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "rag-qa", "port": {"name": "http"}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"


def test_the_canary_gets_five_percent_and_differs_only_in_its_image():
    resources = load(CANARY)
    stable, canary = resources["Deployment", "rag-qa"], resources["Deployment", "rag-qa-canary"]
    stable_labels = stable["spec"]["template"]["metadata"]["labels"]
    canary_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert stable_labels["track"] == "stable" and canary_labels["track"] == "canary"
    # Each Service reaches its own track only, so the Ingress weights are the whole split.
    assert resources["Service", "rag-qa"]["spec"]["selector"] == stable["spec"]["selector"]["matchLabels"]
    assert resources["Service", "rag-qa-canary"]["spec"]["selector"] == canary["spec"]["selector"]["matchLabels"]
    assert canary["spec"]["selector"]["matchLabels"] == canary_labels
    ingress = resources["Ingress", "rag-qa-canary"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "5"
    main = resources["Ingress", "rag-qa"]
    assert ingress["spec"]["rules"][0]["host"] == main["spec"]["rules"][0]["host"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "rag-qa-canary"
    stable_pod, canary_pod = pod_container(stable), pod_container(canary)
    assert {k: v for k, v in canary_pod.items() if k != "image"} == {k: v for k, v in stable_pod.items()
                                                                      if k != "image"}
    assert stable_pod["image"] == "rag-qa" and canary_pod["image"] == "rag-qa-candidate"
    images = {i["name"] for i in yaml.safe_load((CANARY / "kustomization.yaml").read_text())["images"]}
    assert images == {"rag-qa-candidate"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", [BASE, CANARY], ids=["base", "canary"])
def test_kubectl_kustomize_builds_it(folder: Path):
    built = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built.stdout)}
    images = {pod_container(d)["image"] for (kind, _), d in docs.items() if kind == "Deployment"}
    if folder == BASE:
        assert images == {"registry.example.com/rag-qa:0.1.0"}
    else:
        assert images == {"registry.example.com/rag-qa:0.1.0", "registry.example.com/rag-qa:0.2.0-rc1"}
    for doc in docs.values():
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "rag-qa"
