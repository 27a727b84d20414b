"""Whole torchvision networks estimate on both presets: every layer maps, parts add up."""

from __future__ import annotations

import math

import pytest
import torch

import nnjoules
from nnjoules.energy.workload import LayerKind
from nnjoules.models import load_model

NETWORKS = ["alexnet", "vgg16", "resnet50", "mobilenet_v2", "squeezenet1_0", "googlenet",
            "vit_b_16"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_every_layer_of_the_network_maps(name):
    loaded = load_model(name)
    x = torch.randn((1, *loaded.input_shape), generator=torch.Generator().manual_seed(0))
    report = nnjoules.estimate(loaded.model, x)
    assert len(report.layers) == len(report.workload.layers) > 0
    assert math.isclose(sum(report.by_level().values()), report.total(), rel_tol=1e-12)
    for item in report.layers:
        per_mac = item.total / item.layer.macs
        # At least the MAC and its two RF reads; at most every operand from DRAM per MAC.
        assert 1.0 < per_mac < 3 * 200 * 17 / 16, (item.name, per_mac)
    kinds = {item.layer.kind for item in report.layers}
    if name == "vit_b_16":
        assert LayerKind.MATMUL in kinds
        assert report.layer("conv_proj").mapped_as is not None
    if name == "mobilenet_v2":
        assert any(item.layer.G > 1 and item.layer.C == 1 for item in report.layers)


@pytest.mark.parametrize("batch", [1, 4])
def test_batch_maps_on_the_isca_setup_and_energy_per_image_falls(batch):
    loaded = load_model("alexnet")
    x = torch.randn((batch, 3, 224, 224), generator=torch.Generator().manual_seed(0))
    report = nnjoules.estimate(loaded.model, x, hardware="eyeriss-isca2016", measure_density=False)
    assert all(item.layer.N == batch for item in report.layers)
    single = nnjoules.estimate(loaded.model, x[:1], hardware="eyeriss-isca2016",
                               measure_density=False)
    # Weights fetched once serve the whole batch: per image, a batch never costs more.
    assert report.total() / batch <= single.total() * (1 + 1e-12)
    if batch > 1:
        fc = report.layer("classifier.1").by_level()["dram"] / batch
        assert fc < single.layer("classifier.1").by_level()["dram"] / 2
