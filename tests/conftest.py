"""Shared fixtures."""

from __future__ import annotations

import pytest

from system_deps import require_fashion_mnist


@pytest.fixture
def fashion_mnist_installed() -> None:
    """Fail unless Debian's ``dataset-fashion-mnist`` is installed (see system_deps)."""
    require_fashion_mnist()
