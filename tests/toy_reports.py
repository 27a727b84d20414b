"""Small hand-made workloads and their reports, shared by the report-output tests."""

from __future__ import annotations

from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import Hardware, eyeriss
from nnjoules.energy.workload import (
    Density,
    Layer,
    LayerKind,
    UnmodelledOp,
    Workload,
)
from nnjoules.report.energy_report import EnergyReport


def toy_workload(name: str = "toy", *, scale: int = 1) -> Workload:
    """Five layers: convs (one strided, one depthwise), an FC and a matrix product.

    Densities differ per layer so that sparsity shows in the numbers; ``scale``
    multiplies the channel counts (another "network" for comparisons).
    """
    m = 8 * scale
    return Workload(name, (
        Layer("conv1", LayerKind.CONV, N=1, M=m, C=3, H=18, W=18, R=3, S=3, E=16, F=16,
              density=Density(weights=0.9, ifmaps=1.0, ofmaps=0.6), op="aten.convolution"),
        Layer("conv2", LayerKind.CONV, N=1, M=2 * m, C=m, H=18, W=18, R=3, S=3, E=8, F=8,
              stride=(2, 2), density=Density(weights=0.7, ifmaps=0.6, ofmaps=0.5)),
        Layer("dw", LayerKind.CONV, N=1, M=1, C=1, G=2 * m, H=10, W=10, R=3, S=3, E=8, F=8,
              density=Density(weights=0.8, ifmaps=0.5, ofmaps=0.5)),
        Layer("fc", LayerKind.FC, N=1, M=10, C=2 * m * 64, H=1, W=1, R=1, S=1, E=1, F=1,
              density=Density(weights=0.4, ifmaps=0.5, ofmaps=1.0), op="aten.linear"),
        Layer("attn", LayerKind.MATMUL, N=4, M=4, C=10, H=1, W=1, R=1, S=1, E=1, F=1),
    ), unmodelled=(UnmodelledOp("aten.max_pool2d", 2),))


def toy_report(name: str = "toy", *, scale: int = 1,
               hardware: Hardware | None = None) -> EnergyReport:
    """The report of `toy_workload` on ``hardware`` (default: the Eyeriss chip)."""
    return estimate_workload(toy_workload(name, scale=scale), hardware or eyeriss())
