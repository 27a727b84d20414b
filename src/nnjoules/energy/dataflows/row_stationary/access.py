"""Access counts of the row-stationary schedule: words moved per level and operand.

Counting stays apart from costing: `AccessCounts` (:mod:`nnjoules.energy.counts`) holds
how many values move, never energy. The convention is that of Chen et al.'s reuse
framework (ISCA 2016 §VI-C and ``rs_flow.m``): an access at a level is one value *read
from* that level towards the ALU (DRAM read, GLB read, one inter-PE transfer, RF read);
the cost of writing it into the next level down is part of that access. Psums are also
*written* back: to the RF and the GLB while they accumulate, and to DRAM once, as
ofmaps. Weights bypass the GLB.

Per group, with ``s = ceil(E/e)`` strips, ``rows = U*(E - s) + s*R_eff`` ifmap rows read
over all strips, ``O = N*M*E*F`` ofmap values and ``Wt = M*C*R*S`` weights:

* ifmaps (reads): DRAM ``N*C*W*rows * ceil(M/m)``; GLB ``N*C*W*rows * ceil(ceil(M/p)/t)``;
  array ``N*C*W*E*R * ceil(M/p)``; RF ``MACs``.
* weights (reads): DRAM ``Wt * ceil(N/n) * s``; GLB 0 (bypassed); array
  ``Wt * ceil(N/n) * E``; RF ``MACs``.
* psums: DRAM 0 reads, ``O`` writes; GLB ``O*(ceil(C/(q r)) - 1)`` reads and as many
  writes; array ``O*(R*ceil(C/q) - ceil(C/(q r)))`` transfers; RF
  ``O*(C*R*S - R*ceil(C/q))`` reads and as many writes.

These are exact for every shape (final tiles may be partial) and reduce to the
author's closed form (reference/energy-model.md §2.3, with its halo factor
``alpha/beta``) when the tiles divide the layer evenly. Psum array transfers are
counted once: ISCA Eq. (4) has ``ab(c-1)`` with no factor 2, and the array cost
already covers the FIFOs on both sides of a hop. (``rs_flow.m`` charges this term
twice in its objective but once in its reported counts; we use once in both.)
"""

from __future__ import annotations

from typing import Any

from nnjoules.energy.counts import AccessCounts, Key
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping, ceil_div
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Layer, LayerKind, Operand  # noqa: F401  (doctest)


def count_accesses(layer: Layer, mapping: Mapping) -> AccessCounts:
    """Exact access counts of ``layer`` under the row-stationary ``mapping``.

    Legality (capacities) is not checked here; see `mapping.violations`.

    Example: a 1-D layer (R = E = 1) with C = 4 channels, q = 2, r = 1, so two channel
    passes: each ofmap value's psum goes to the GLB once and comes back once.

    >>> layer = Layer("toy", LayerKind.FC, N=1, M=2, C=4, H=1, W=3, R=1, S=3, E=1, F=1)
    >>> counts = count_accesses(layer, Mapping(m=2, n=1, e=1, p=2, q=2, r=1, t=1))
    >>> counts.read(Level.GLB, Operand.PSUMS), counts.write(Level.DRAM, Operand.PSUMS)
    (2, 2)
    >>> counts.read(Level.RF, Operand.PSUMS)  # O * (C*R*S - R*ceil(C/q)) = 2 * (12 - 2)
    20
    """
    mp = mapping
    reads, writes = access_terms(layer, m=mp.m, n=mp.n, e=mp.e, p=mp.p, q=mp.q, r=mp.r, t=mp.t)
    return AccessCounts(reads={k: int(v) for k, v in reads.items()},
                        writes={k: int(v) for k, v in writes.items()}, macs=layer.macs)


def access_terms(layer: Layer, *, m: Any, n: Any, e: Any, p: Any, q: Any, r: Any,
                 t: Any) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Reads and writes per (level, operand) for mapping variables given as ints or arrays.

    The one implementation of the counts: `count_accesses` calls it with integers; the
    mapping search calls its three parts with numpy arrays of candidates. Each part
    depends on its own variables only, which is what lets the search combine them.
    """
    reads, writes = batch_strip_terms(layer, n=n, e=e)
    for part in (filter_terms(layer, e=e, m=m, p=p, t=t), channel_terms(layer, q=q, r=r)):
        reads.update(part[0])
        writes.update(part[1])
    return reads, writes


def rows_read(layer: Layer, e: Any) -> Any:
    """Ifmap rows read over all strips of ``e`` ofmap rows (halo rows counted again)."""
    strips = ceil_div(layer.E, e)
    return layer.U * (layer.E - strips) + strips * layer.R_eff


def batch_strip_terms(layer: Layer, *, n: Any, e: Any) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Weight traffic and the terms fixed by the layer: depend on (n, e) only."""
    weights = layer.num_weights
    batch_chunks = ceil_div(layer.N, n)
    reads: dict[Key, Any] = {
        (Level.DRAM, Operand.WEIGHTS): weights * batch_chunks * ceil_div(layer.E, e),
        (Level.ARRAY, Operand.WEIGHTS): weights * batch_chunks * layer.E,
        (Level.RF, Operand.WEIGHTS): layer.macs,
        (Level.RF, Operand.IFMAPS): layer.macs,
    }
    return reads, {(Level.DRAM, Operand.PSUMS): layer.num_ofmap_values}


def filter_terms(layer: Layer, *, e: Any, m: Any, p: Any, t: Any,
                 ) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Ifmap traffic: depends on the strip height e and the filter split (m, p, t)."""
    rows = rows_read(layer, e)
    row_values = layer.G * layer.N * layer.C * layer.W  # one row of every channel and ifmap
    filter_groups = ceil_div(layer.M, p)
    reads: dict[Key, Any] = {
        (Level.DRAM, Operand.IFMAPS): row_values * rows * ceil_div(layer.M, m),
        (Level.GLB, Operand.IFMAPS): row_values * rows * ceil_div(filter_groups, t),
        (Level.ARRAY, Operand.IFMAPS): row_values * layer.E * layer.R * filter_groups,
    }
    return reads, {}


def channel_terms(layer: Layer, *, q: Any, r: Any) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Psum traffic: depends on the channel split (q, r) only."""
    ofmaps = layer.num_ofmap_values
    channel_sets = ceil_div(layer.C, q)
    channel_passes = ceil_div(channel_sets, r)
    psum_rf = ofmaps * (layer.C * layer.R * layer.S - layer.R * channel_sets)
    psum_glb = ofmaps * (channel_passes - 1)
    reads: dict[Key, Any] = {
        (Level.GLB, Operand.PSUMS): psum_glb,
        (Level.ARRAY, Operand.PSUMS): ofmaps * (layer.R * channel_sets - channel_passes),
        (Level.RF, Operand.PSUMS): psum_rf,
    }
    writes: dict[Key, Any] = {(Level.GLB, Operand.PSUMS): psum_glb,
                              (Level.RF, Operand.PSUMS): psum_rf}
    return reads, writes


def compulsory_dram(layer: Layer) -> dict[Operand, int]:
    """The least DRAM traffic any schedule needs: every used value moved once.

    Ifmap rows that no output reads (stride larger than the filter) are not needed.
    """
    rows_needed = min(layer.U * (layer.E - 1) + layer.R_eff, layer.E * layer.R_eff)
    return {
        Operand.IFMAPS: layer.G * layer.N * layer.C * layer.W * rows_needed,
        Operand.WEIGHTS: layer.num_weights,
        Operand.PSUMS: layer.num_ofmap_values,
    }
