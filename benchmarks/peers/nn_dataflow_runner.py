#!/usr/bin/env python3
"""Run the Stanford nn-dataflow searcher on its AlexNet, on an Eyeriss-like chip.

This script runs INSIDE ``benchmarks/peers/.venv-nn-dataflow`` (made by
``setup_peers.sh``): nn-dataflow 2.1 pins sympy==1.6.2, which torch cannot live with.
It imports nothing from nnjoules. It prints one JSON document on stdout; progress
and notes go to stderr.

Hardware (chosen to match nnjoules' ``eyeriss`` preset as closely as the package
allows):

* one processing node (no multi-node partitioning), 12 x 14 PEs (rows x columns,
  ``PhyDim2(h=12, w=14)``; the RS logical PE set is R rows x E columns);
* 108 KiB global buffer, 16-bit words (55296 words);
* register file 512 B per PE (256 words) by default. nn-dataflow has one unified
  regf per PE that holds all three data types together, where the Eyeriss chip has
  separate scratch pads of 224 weight + 12 ifmap + 24 psum words = 260 words
  (520 B). 512 B is the RS RF size of the ISCA'16 study and of nn-dataflow's own
  ISCA'16 test; ``--regf-bytes 520`` gives the chip's total instead;
* costs per 16-bit access, normalised to one MAC: DRAM 200, GLB 6, array 2, RF 1,
  MAC 1. As in nn-dataflow's ISCA'16 test, the array (PE-to-PE) cost is the
  ``ITCN`` entry of ``mem_hier`` (DRAM, GBUF, ITCN, REGF); ``noc_hop`` is the cost
  per hop of the *inter-node* network, which a single node never uses: it is 0;
* ``idl_unit`` (static energy per unit time) 0, array bus width and DRAM bandwidth
  unlimited.

Search: ``MapStrategyEyeriss`` (row stationary: the logical R x E PE set is
replicated/folded onto the array by fixed rules), then nn-dataflow's loop-blocking
search over the ifmap/ofmap/batch loops at the GBUF and REGF levels. By default the
blocking is searched exhaustively (``sw_solve_loopblocking=False``); ``--solver``
uses the analytical solver of the Tetris paper instead (CONV/FC only). Every data
type may bypass the GLB when it has no reuse there (``sw_gbuf_bypass=(True,)*3``),
as in the ISCA'16 test; Chen's closed form always sends weights around the GLB.
No inter-layer pipelining, no write-back saving, no access forwarding, no buffer
sharing, optimisation goal energy, one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import OrderedDict

from nn_dataflow.core import (
    ConvLayer,
    Cost,
    FCLayer,
    LocalRegionLayer,
    MapStrategyEyeriss,
    NNDataflow,
    NodeRegion,
    Option,
    PhyDim2,
    Resource,
)
from nn_dataflow.core import DataCategoryEnum as de
from nn_dataflow.core import MemHierEnum as me
from nn_dataflow.nns import import_network

WORD_BITS = 16
LEVELS = (("dram", me.DRAM), ("glb", me.GBUF), ("array", me.ITCN), ("rf", me.REGF))
DATA_TYPES = (("weights", de.FIL), ("ifmaps", de.IFM), ("ofmaps", de.OFM))


def build_resource(*, array_h: int, array_w: int, gbuf_bytes: int,
                   regf_bytes: int) -> Resource:
    """One Eyeriss-like node; buffer sizes are given to nn-dataflow in words."""
    word_bytes = (WORD_BITS + 7) // 8
    one = PhyDim2(1, 1)
    origin = PhyDim2(0, 0)
    dram = NodeRegion(origin=origin, dim=one, type=NodeRegion.DRAM)
    return Resource(
        proc_region=NodeRegion(origin=origin, dim=one, type=NodeRegion.PROC),
        dram_region=dram,
        src_data_region=dram,
        dst_data_region=dram,
        dim_array=PhyDim2(array_h, array_w),
        size_gbuf=gbuf_bytes // word_bytes,
        size_regf=regf_bytes // word_bytes,
        array_bus_width=float("inf"),
        dram_bandwidth=float("inf"),
        no_time_mux=False,
    )


def build_cost(*, dram: float, glb: float, array: float, rf: float, mac: float) -> Cost:
    """Per-access costs; ``mem_hier`` is indexed by MemHierEnum (DRAM, GBUF, ITCN, REGF)."""
    hier = [0.0] * me.NUM
    hier[me.DRAM], hier[me.GBUF], hier[me.ITCN], hier[me.REGF] = dram, glb, array, rf
    return Cost(mac_op=mac, mem_hier=tuple(hier), noc_hop=0, idl_unit=0)


def build_options(*, solver: bool) -> Option:
    """The search options; see the module docstring."""
    return Option(
        sw_gbuf_bypass=(True, True, True),
        sw_solve_loopblocking=solver,
        hw_access_forwarding=False,
        hw_gbuf_sharing=False,
        hw_gbuf_save_writeback=False,
        partition_hybrid=False,
        partition_batch=False,
        partition_ifmaps=False,
        partition_interlayer=False,
        layer_pipeline_time_ovhd=float("inf"),
        layer_pipeline_max_degree=float("inf"),
        layer_pipeline_opt=True,
        opt_goal="e",
        ntops=1,
        nprocesses=1,
        verbose=False,
    )


def layer_shape(layer, batch: int) -> dict:
    """The layer in Eyeriss letters (H, W are the padded ifmap size nn-dataflow uses)."""
    if isinstance(layer, ConvLayer):
        kind = "fc" if isinstance(layer, FCLayer) else "conv"
        return {
            "kind": kind, "N": batch, "C": layer.nifm, "M": layer.nofm,
            "H": layer.hifm, "W": layer.wifm, "R": layer.hfil, "S": layer.wfil,
            "E": layer.hofm, "F": layer.wofm, "stride": [layer.htrd, layer.wtrd],
            "G": 1,
        }
    assert isinstance(layer, LocalRegionLayer)
    return {
        "kind": type(layer).__name__.replace("Layer", "").lower(), "N": batch,
        "C": layer.nifm, "M": layer.nofm, "H": layer.hifm, "W": layer.wifm,
        "R": layer.hreg, "S": layer.wreg, "E": layer.hofm, "F": layer.wofm,
        "stride": [layer.htrd, layer.wtrd], "G": 1,
    }


def _plain(value):
    """JSON-friendly copy of nn-dataflow's tuples/namedtuples/floats."""
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def layer_result(name: str, layer, sched, cost: Cost, batch: int) -> dict:
    """Energy and access counts of one scheduled layer."""
    scheme = sched.scheme
    access = scheme["access"]  # [level][data type], words
    by_level = {lvl: cost.mem_hier[idx] * sum(access[idx]) for lvl, idx in LEVELS}
    by_level["glb"] += cost.mem_hier[me.GBUF] * sum(scheme["remote_gbuf_access"])
    by_level["mac"] = scheme["cost_op"]
    accesses = {lvl: {dt: access[idx][d] for dt, d in DATA_TYPES} for lvl, idx in LEVELS}
    energy_by_type = {
        dt: sum(cost.mem_hier[idx] * access[idx][d] for _, idx in LEVELS)
        for dt, d in DATA_TYPES
    }
    energy_level_type = {
        lvl: {dt: cost.mem_hier[idx] * access[idx][d] for dt, d in DATA_TYPES}
        for lvl, idx in LEVELS
    }
    macs = layer.total_ops(batch) if isinstance(layer, ConvLayer) else 0
    return {
        "name": name,
        "shape": layer_shape(layer, batch),
        "macs": macs,
        "ops": scheme["ops"],
        "energy": scheme["cost"],
        "energy_by_level": by_level,
        "energy_by_level_and_type": energy_level_type,
        "energy_data_by_type": energy_by_type,
        "accesses_words": accesses,
        "cost_noc": scheme["cost_noc"],
        "cost_static": scheme["cost_static"],
        "time_cycles": scheme["time"],
        "mapping": {
            "fetch": _plain(scheme["fetch"]),
            "ti": _plain(scheme["ti"]), "to": _plain(scheme["to"]),
            "tb": _plain(scheme["tb"]),
            "orders": _plain(scheme["orders"]),
            "size_words": _plain(scheme["size"]),
            "unit_size_words": _plain(scheme["unit_size"]),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="alex_net")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--array", type=int, nargs=2, default=[12, 14], metavar=("H", "W"))
    ap.add_argument("--gbuf-bytes", type=int, default=108 * 1024)
    ap.add_argument("--regf-bytes", type=int, default=512)
    ap.add_argument("--hier-cost", type=float, nargs=4, default=[200, 6, 2, 1],
                    metavar=("DRAM", "GLB", "ARRAY", "RF"))
    ap.add_argument("--mac-cost", type=float, default=1.0)
    ap.add_argument("--solver", action="store_true",
                    help="analytical loop-blocking solver instead of exhaustive search")
    args = ap.parse_args(argv)

    network = import_network(args.net)
    resource = build_resource(array_h=args.array[0], array_w=args.array[1],
                              gbuf_bytes=args.gbuf_bytes, regf_bytes=args.regf_bytes)
    dram, glb, array, rf = args.hier_cost
    cost = build_cost(dram=dram, glb=glb, array=array, rf=rf, mac=args.mac_cost)
    options = build_options(solver=args.solver)

    nnd = NNDataflow(network, args.batch, resource, cost, MapStrategyEyeriss)
    t0 = time.perf_counter()
    tops, cache_stats = nnd.schedule_search(options)
    wall_s = time.perf_counter() - t0
    if not tops:
        print(json.dumps({"error": "nn-dataflow found no valid schedule"}))
        return 2
    best = tops[0]

    layers = [layer_result(name, network[name], best[name], cost, args.batch)
              for name in network]
    mac_layers = [r for r in layers if r["shape"]["kind"] in ("conv", "fc")]

    def _sum_levels(rows):
        keys = ("dram", "glb", "array", "rf", "mac")
        return {k: sum(r["energy_by_level"][k] for r in rows) for k in keys}

    out = OrderedDict()
    out["tool"] = "nn-dataflow"
    out["versions"] = {
        "nn_dataflow": _version("nn-dataflow"), "sympy": _version("sympy"),
        "numpy": _version("numpy"), "python": platform.python_version(),
    }
    out["net"] = args.net
    out["batch"] = args.batch
    out["map_strategy"] = "MapStrategyEyeriss"
    out["resource"] = {
        "nodes": [1, 1],
        "dim_array": list(resource.dim_array),
        "gbuf_bytes": args.gbuf_bytes, "size_gbuf_words": resource.size_gbuf,
        "regf_bytes": args.regf_bytes, "size_regf_words": resource.size_regf,
        "word_bits": WORD_BITS,
        "array_bus_width": "inf", "dram_bandwidth": "inf", "no_time_mux": False,
    }
    out["cost"] = {"mac_op": cost.mac_op, "mem_hier": {
        "dram": cost.mem_hier[me.DRAM], "gbuf": cost.mem_hier[me.GBUF],
        "itcn": cost.mem_hier[me.ITCN], "regf": cost.mem_hier[me.REGF]},
        "noc_hop": cost.noc_hop, "idl_unit": cost.idl_unit}
    out["options"] = {k: (list(v) if isinstance(v, tuple) else
                          ("inf" if v == float("inf") else v))
                      for k, v in options._asdict().items()}
    out["search_wall_s"] = wall_s
    out["cache_stats"] = list(cache_stats)
    out["total_energy"] = best.total_cost
    out["total_energy_mac_layers"] = sum(r["energy"] for r in mac_layers)
    out["energy_by_level"] = _sum_levels(layers)
    out["energy_by_level_mac_layers"] = _sum_levels(mac_layers)
    out["total_macs"] = sum(r["macs"] for r in layers)
    out["layers"] = layers
    json.dump(out, sys.stdout, indent=1, default=_plain)
    sys.stdout.write("\n")
    print(f"nn-dataflow: {args.net} batch {args.batch}: total {best.total_cost:.4g} "
          f"in {wall_s:.1f} s", file=sys.stderr)
    return 0


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001 - informational only
        return None


if __name__ == "__main__":
    sys.exit(main())
