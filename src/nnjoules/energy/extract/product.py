"""The shape of one modelled product, as both importers find it (before it is a `Layer`)."""

from __future__ import annotations

from dataclasses import dataclass

from nnjoules.energy.workload import LayerKind


@dataclass(frozen=True, eq=False)
class ProductShape:
    """Eyeriss shape letters of a convolution, FC layer or matrix product.

    Each importer subclasses it with what it needs to measure densities (tensors for
    PyTorch, initializer names for ONNX). Compared by identity: two products with the
    same shape are still two layers.
    """

    kind: LayerKind
    N: int
    M: int
    C: int
    G: int = 1
    H: int = 1
    W: int = 1
    R: int = 1
    S: int = 1
    E: int = 1
    F: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
