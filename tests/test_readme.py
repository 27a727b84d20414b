"""The README's quick start is what CI runs, and it installs what the tests need."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    """The command lines of the README's quick-start block, comments left out."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block is not None, "README: no bash block under Quick start"
    return [line for line in block.group(1).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_quick_start_is_two_commands_and_ci_runs_the_second_verbatim() -> None:
    demo, tests = quick_start_commands()
    assert demo.endswith("nnjoules demo --quick")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [tests]


def test_the_test_command_installs_the_system_packages_the_tests_require() -> None:
    _, tests = quick_start_commands()
    installs = re.search(r"apt-get install -y ([\w\- ]+?) &&", tests)
    assert installs is not None
    assert set(installs.group(1).split()) >= {"chromium", "dataset-fashion-mnist"}
    assert re.search(r'pip install .*-e "\.\[dev\]"', tests)
    assert tests.endswith("python -m pytest")
