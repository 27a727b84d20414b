"""The workload: layers as plain values, in the Eyeriss shape letters.

A `Layer` is one convolution, fully connected layer or matrix product, described by
the letters of the Eyeriss papers (N M C G H W R S E F U; see DESIGN section 1) plus
its precision and the densities (fraction of non-zero values) of its operands.
A `Workload` is the tuple of layers of a network together with the operators that
the energy model does not cover, which are reported rather than dropped.

A fully connected layer is a convolution with H = R, W = S and E = F = 1; a matrix
product ``[N, C] @ [C, M]`` is an FC layer whose "weights" are activations (G holds
the batch of a batched product, e.g. the heads of attention).
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace


class LayerKind(enum.StrEnum):
    """What a layer was captured as; all kinds map onto the same row-stationary model."""

    CONV = "conv"
    FC = "fc"
    MATMUL = "matmul"


class Operand(enum.StrEnum):
    """Data types moved through the memory hierarchy.

    Psums become ofmaps: their traffic is reported together, as the papers do.
    """

    WEIGHTS = "weights"
    IFMAPS = "ifmaps"
    PSUMS = "psums"


@dataclass(frozen=True)
class Precision:
    """Bit-widths per operand, in bits. Psums and ofmaps share ``ofmap_bits``."""

    weight_bits: int = 16
    ifmap_bits: int = 16
    ofmap_bits: int = 16

    def __post_init__(self) -> None:
        for name in ("weight_bits", "ifmap_bits", "ofmap_bits"):
            bits = getattr(self, name)
            if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 64:
                raise ValueError(f"Precision.{name} must be an integer in [1, 64], got {bits!r}")

    def bits_of(self, operand: Operand) -> int:
        """Bit-width of one value of ``operand``."""
        return {
            Operand.WEIGHTS: self.weight_bits,
            Operand.IFMAPS: self.ifmap_bits,
            Operand.PSUMS: self.ofmap_bits,
        }[operand]


@dataclass(frozen=True)
class Density:
    """Fraction of non-zero values per operand, in [0, 1], and run-length statistics.

    ``*_rlc_pairs`` is the number of (run, level) pairs per value that run-length
    coding with 5-bit runs needs for that tensor, measured from real values. It
    depends on where the zeros lie, not only on how many there are; when it is
    ``None`` the cost model assumes independently placed zeros.

    ``weights_row_peak`` bounds the worst chunk of weights a mapping can move: the largest
    non-zero fraction of any filter row (the ``S`` weights of one filter, channel and
    kernel row, the unit every row-stationary weight chunk is made of). It is measured
    from statically known weights; 1.0 (no bound: tiles sized for dense rows) when
    unknown. It is never below ``weights``, the mean over the same rows.
    """

    weights: float = 1.0
    ifmaps: float = 1.0
    ofmaps: float = 1.0
    weights_rlc_pairs: float | None = None
    ifmaps_rlc_pairs: float | None = None
    ofmaps_rlc_pairs: float | None = None
    weights_row_peak: float = 1.0

    def __post_init__(self) -> None:
        for name in ("weights", "ifmaps", "ofmaps", "weights_rlc_pairs", "ifmaps_rlc_pairs",
                     "ofmaps_rlc_pairs", "weights_row_peak"):
            value = getattr(self, name)
            if value is None and name.endswith("_rlc_pairs"):
                continue
            # a string or a bool would pass float(); NaN fails the comparison
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not 0.0 <= float(value) <= 1.0):
                raise ValueError(f"Density.{name} must be a number in [0, 1], got {value!r}")
        # the densest row is at least the mean of the rows (slack for float rounding)
        if self.weights_row_peak < self.weights - 1e-9:
            raise ValueError(f"Density.weights_row_peak={self.weights_row_peak!r} is below "
                             f"weights={self.weights!r}: the densest filter row cannot be "
                             "sparser than the mean")

    def of(self, operand: Operand) -> float:
        """Density of ``operand`` (psums are charged with the ofmap density)."""
        return {
            Operand.WEIGHTS: self.weights,
            Operand.IFMAPS: self.ifmaps,
            Operand.PSUMS: self.ofmaps,
        }[operand]

    def rlc_pairs_of(self, operand: Operand) -> float | None:
        """Measured run-length pairs per value of ``operand``, if known."""
        return {
            Operand.WEIGHTS: self.weights_rlc_pairs,
            Operand.IFMAPS: self.ifmaps_rlc_pairs,
            Operand.PSUMS: self.ofmaps_rlc_pairs,
        }[operand]


_SHAPE_LETTERS = ("N", "M", "C", "G", "H", "W", "R", "S", "E", "F")


@dataclass(frozen=True)
class Layer:
    """One layer in Eyeriss shape letters.

    H and W are the *padded* ifmap height and width, C is channels per group and M
    filters per group, so the layer holds ``G * M * C * R * S`` weights. The stride
    and dilation are (vertical, horizontal); ``U`` is the vertical stride.

    Example (AlexNet CONV1 of ISCA 2016 Table II, batch 4):

    >>> conv1 = Layer("conv1", LayerKind.CONV, N=4, M=96, C=3, H=227, W=227,
    ...               R=11, S=11, E=55, F=55, stride=(4, 4))
    >>> conv1.macs  # 4 * 96 * 3 * 55 * 55 * 11 * 11
    421660800
    """

    name: str
    kind: LayerKind
    N: int
    M: int
    C: int
    H: int
    W: int
    R: int
    S: int
    E: int
    F: int
    G: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right
    precision: Precision = field(default_factory=Precision)
    density: Density = field(default_factory=Density)
    op: str = ""  # the operator it was captured from, e.g. "aten.convolution"
    shares_weights: str = ""  # an earlier layer that holds these weights (tied): counted there

    def __post_init__(self) -> None:
        for letter in _SHAPE_LETTERS:
            value = getattr(self, letter)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"layer {self.name!r}: {letter} must be a positive integer, "
                                 f"got {value!r}")
        for label, pair in (("stride", self.stride), ("dilation", self.dilation)):
            if len(pair) != 2 or any(not isinstance(v, int) or v < 1 for v in pair):
                raise ValueError(f"layer {self.name!r}: {label} must be two positive integers, "
                                 f"got {pair!r}")
        expected_e = (self.H - self.R_eff) // self.U + 1
        expected_f = (self.W - self.S_eff) // self.stride[1] + 1
        if self.H < self.R_eff or self.E != expected_e:
            raise ValueError(f"layer {self.name!r}: E={self.E} does not follow from H={self.H}, "
                             f"R={self.R}, stride {self.U}, dilation {self.dilation[0]} "
                             f"(expected {expected_e})")
        if self.W < self.S_eff or self.F != expected_f:
            raise ValueError(f"layer {self.name!r}: F={self.F} does not follow from W={self.W}, "
                             f"S={self.S}, stride {self.stride[1]}, dilation {self.dilation[1]} "
                             f"(expected {expected_f})")

    @property
    def U(self) -> int:
        """Vertical stride."""
        return self.stride[0]

    @property
    def R_eff(self) -> int:
        """Rows of ifmap one output row reads: the dilated filter height."""
        return self.dilation[0] * (self.R - 1) + 1

    @property
    def S_eff(self) -> int:
        """Columns of ifmap one output value reads: the dilated filter width."""
        return self.dilation[1] * (self.S - 1) + 1

    @property
    def macs(self) -> int:
        """Dense multiply-accumulates: G * N * M * C * E * F * R * S."""
        return self.G * self.N * self.M * self.C * self.E * self.F * self.R * self.S

    @property
    def num_weights(self) -> int:
        """Weights (filter values): G * M * C * R * S."""
        return self.G * self.M * self.C * self.R * self.S

    @property
    def num_ifmap_values(self) -> int:
        """Padded ifmap values: G * N * C * H * W."""
        return self.G * self.N * self.C * self.H * self.W

    @property
    def num_ofmap_values(self) -> int:
        """Ofmap values: G * N * M * E * F."""
        return self.G * self.N * self.M * self.E * self.F

    @property
    def nonzero_weights(self) -> float:
        """Weights that are not zero (expected value from the weight density)."""
        return self.num_weights * self.density.weights

    @property
    def nonskipped_macs(self) -> float:
        """MACs left when every MAC with a zero operand is skipped.

        Uses the analytical rule of Yang et al.: dense MACs x weight density x ifmap
        density (zeros of the two operands treated as independent).
        """
        return self.macs * self.density.weights * self.density.ifmaps

    def with_density(self, density: Density) -> Layer:
        """A copy of this layer with other densities."""
        return replace(self, density=density)

    def with_precision(self, precision: Precision) -> Layer:
        """A copy of this layer with other bit-widths."""
        return replace(self, precision=precision)

    @property
    def shape_key(self) -> tuple[object, ...]:
        """Everything the mapping search depends on (name and densities excluded)."""
        return (self.N, self.M, self.C, self.G, self.H, self.W, self.R, self.S, self.E,
                self.F, self.stride, self.dilation, self.precision)


@dataclass(frozen=True)
class UnmodelledOp:
    """An operator seen in the network that the energy model does not cover."""

    op: str
    count: int


@dataclass(frozen=True)
class Workload:
    """The layers of one network, in execution order, and what was left out."""

    name: str
    layers: tuple[Layer, ...]
    unmodelled: tuple[UnmodelledOp, ...] = ()
    # What the numbers assume that the user did not ask for (e.g. activations taken as
    # dense because an ONNX graph could not be run); one sentence each.
    notes: tuple[str, ...] = ()
    # Input items (the batch) the counts are for, when known from the inputs; a layer's N
    # may differ (a linear layer on tokens has N = items x tokens).
    items: int | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError(f"workload {self.name!r} has no convolution, linear or "
                             "matrix-product layer to estimate")
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"workload {self.name!r}: duplicate layer names {duplicates}")

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"workload {self.name!r} has no layer {name!r}")

    @property
    def macs(self) -> int:
        """Dense MACs of all layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def num_weights(self) -> int:
        """Distinct weights of all layers (matrix products count their second operand; a
        weight several layers share counts once, see ``Layer.shares_weights``)."""
        return sum(layer.num_weights for layer in self.layers if not layer.shares_weights)

    def with_densities(self, overrides: Mapping[str, Density]) -> Workload:
        """A copy with the densities of the named layers replaced.

        Raises:
            KeyError: a name matches no layer.
        """
        known = {layer.name for layer in self.layers}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise KeyError(f"density override names unknown layer(s) {unknown}; "
                           f"layers are {sorted(known)}")
        layers = tuple(layer.with_density(overrides[layer.name]) if layer.name in overrides
                       else layer for layer in self.layers)
        return replace(self, layers=layers)

    def with_precision(self, precision: Precision) -> Workload:
        """A copy with every layer at ``precision``."""
        return replace(self, layers=tuple(lay.with_precision(precision) for lay in self.layers))
