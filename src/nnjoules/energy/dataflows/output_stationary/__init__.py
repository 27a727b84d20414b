"""The three output-stationary (OS) dataflows of the ISCA 2016 comparison (§IV-B, §VI-A).

Each PE accumulates one ofmap value at a time in its RF; weights and ifmaps reach it
over the array, one per MAC. The variants differ in the ofmap region the array holds
at once (ISCA Fig. 3):

* OS-A (`soc_mop`): single ofmap channel, multiple ofmap pixels (n images x e x f);
* OS-B (`moc_mop`): multiple channels, multiple pixels (p filters x n images x f columns
  of one ofmap row);
* OS-C (`moc_sop`): multiple channels, single pixel (p filters x n images).

Counts follow the author's ``os_soc_mop_flow.m``, ``os_moc_mop_flow.m`` (its ``ver3``)
and ``os_moc_sop_flow.m``, made exact for partial tiles.
"""

from nnjoules.energy.dataflows.output_stationary.moc_mop import OS_B as OS_B
from nnjoules.energy.dataflows.output_stationary.moc_sop import OS_C as OS_C
from nnjoules.energy.dataflows.output_stationary.soc_mop import OS_A as OS_A
