#!/usr/bin/env bash
# Create the isolated virtual environment for the nn-dataflow peer benchmark.
#
# nn-dataflow 2.1 (Stanford, https://github.com/stanford-mast/nn_dataflow) pins
# sympy==1.6.2, which conflicts with torch (sympy>=1.13), so it lives in its own venv:
#     benchmarks/peers/.venv-nn-dataflow      (git-ignored)
# Usage: bash benchmarks/peers/setup_peers.sh  [--force]   (--force recreates the venv)
# Env:   PYTHON=python3.11 to pick the interpreter (default: python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-nn-dataflow"
python="${PYTHON:-python3}"

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$venv"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv with $($python --version 2>&1)" >&2
    "$python" -m venv "$venv"
fi

"$venv/bin/python" -m pip install --quiet --upgrade pip
# numpy is a runtime dependency of nn-dataflow that its metadata does not always pull in.
"$venv/bin/python" -m pip install --quiet "nn-dataflow==2.1" "sympy==1.6.2" "numpy"

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import nn_dataflow  # noqa: F401
from nn_dataflow.nns import import_network
net = import_network("alex_net")
print(f"nn-dataflow {md.version('nn-dataflow')}, sympy {md.version('sympy')}, "
      f"numpy {md.version('numpy')}: alex_net has {len(list(net))} layers")
PY
echo "ok: $venv" >&2
