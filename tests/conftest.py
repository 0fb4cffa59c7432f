"""Repository-wide test settings."""

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: pods are Linux network namespaces")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
