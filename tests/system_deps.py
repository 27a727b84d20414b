"""What the tests need from the system, and how they fail without it.

The README's test command installs every one of these (Debian's ``chromium`` and
``dataset-fashion-mnist``), so a missing one fails the test with the command to run;
nothing is skipped.
"""

from __future__ import annotations

import shutil

import pytest

SETUP = "run the README's test command, which installs it"


def require_fashion_mnist() -> None:
    """Fail unless Debian's ``dataset-fashion-mnist`` is installed."""
    from nnjoules.data.fashion_mnist import DEBIAN_DIR

    if not DEBIAN_DIR.is_dir():
        pytest.fail(f"Fashion-MNIST is not at {DEBIAN_DIR} (Debian package "
                    f"dataset-fashion-mnist): {SETUP}")


def chromium_binary() -> str:
    """The path of Debian's chromium; fails the test when it is missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"chromium is not installed (Debian package chromium): {SETUP}")
