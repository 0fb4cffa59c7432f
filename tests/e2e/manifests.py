"""Manifests the e2e modules build in Python: an injected namespace, a Deployment whose pods
run one container under their own service account, and httpbin's command."""

from __future__ import annotations

from typing import Any

HTTPBIN = ["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"]


def injected_namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"istio-injection": "enabled"}}}


def deployment(ns: str, name: str, container: dict[str, Any]) -> dict[str, Any]:
    """One replica labelled `app: <name>`, service account `<name>`, one container `<name>`."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"serviceAccountName": name,
                                           "containers": [{"name": name, **container}]}}}}
