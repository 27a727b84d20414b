"""Workload capture from nn.Modules: shape letters, kinds, names, densities, unmodelled ops.

Expected values are computed in each test from the layer formulas, or by
``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2 = MACs) for whole networks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from torch import nn
from torch.nn.utils import prune
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from nnjoules.energy.extract import extract_workload, workload_from_module
from nnjoules.energy.extract.sparsity import density, tensor_stats
from nnjoules.energy.workload import LayerKind
from nnjoules.errors import InputError, ModelLoadError


def ops(workload) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {u.op: u.count for u in workload.unmodelled}


def test_conv_bn_relu_pool_fc() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    w = workload_from_module(net, torch.randn(2, 3, 32, 32), measure_density=False)
    conv, fc = w.layers
    assert (conv.name, conv.kind, conv.op) == ("0", LayerKind.CONV, "aten.convolution")
    # padded 34 x 34 input, E = (34 - 3) // 2 + 1 = 16
    assert (conv.N, conv.M, conv.C, conv.G, conv.H, conv.W, conv.R, conv.S, conv.E, conv.F) == (
        2, 8, 3, 1, 34, 34, 3, 3, 16, 16)
    assert (conv.stride, conv.padding) == ((2, 2), (1, 1, 1, 1))
    assert (fc.name, fc.kind, fc.N, fc.C, fc.M) == ("5", LayerKind.FC, 2, 512, 10)
    assert (fc.H, fc.W, fc.R, fc.S, fc.E, fc.F) == (1, 1, 1, 1, 1, 1)
    assert w.macs == 2 * 8 * 3 * 16 * 16 * 9 + 2 * 512 * 10
    # view/flatten/t are free; batch norm, relu and pooling are reported
    assert ops(w) == {"aten.max_pool2d_with_indices": 1, "aten.native_batch_norm": 1,
                      "aten.relu": 1}
    assert all(d.density.weights == 1.0 and d.density.weights_rlc_pairs is None for d in w)


def test_depthwise_dilated_and_1d_convs() -> None:
    depthwise = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16, bias=False)
    w = workload_from_module(depthwise, torch.randn(1, 16, 20, 20), measure_density=False)
    (layer,) = w.layers
    assert (layer.G, layer.C, layer.M, layer.H, layer.R, layer.E) == (16, 1, 1, 24, 3, 20)
    assert (layer.dilation, layer.R_eff) == ((2, 2), 5)
    assert layer.macs == 16 * 20 * 20 * 9

    conv1d = nn.Conv1d(4, 6, 5, stride=2, padding=1)
    (layer,) = workload_from_module(conv1d, torch.randn(3, 4, 50), measure_density=False).layers
    # a 1 x L image: H = R = E = 1, W = 50 + 2, F = (52 - 5) // 2 + 1 = 24
    assert (layer.N, layer.M, layer.C, layer.H, layer.W, layer.R, layer.S, layer.E, layer.F) == (
        3, 6, 4, 1, 52, 1, 5, 1, 24)
    assert (layer.stride, layer.padding) == ((1, 2), (0, 0, 1, 1))


class Functional(nn.Module):
    """Functional calls on constant (non-parameter) weights and on two activations."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.randn(8, 3, 3, 3))
        self.proj = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.kernel * 2.0)  # weight preprocessing on a buffer: not counted
        tokens = self.proj(y.flatten(2).transpose(1, 2).reshape(2, 8, 8, 8))  # [2, 8, 8, 8]
        scores = tokens @ tokens.transpose(-1, -2)  # batched product of two activations
        return scores.softmax(-1)


def test_functional_calls_and_matmul_of_activations() -> None:
    w = workload_from_module(Functional(), torch.randn(2, 3, 10, 10), measure_density=False)
    conv, proj, scores = w.layers
    assert (conv.name, conv.kind, conv.M, conv.E) == ("Functional", LayerKind.CONV, 8, 8)
    # linear on a 4-D input: every leading dimension becomes rows of the FC layer
    assert (proj.name, proj.kind, proj.N, proj.C, proj.M) == ("proj", LayerKind.FC, 128, 8, 8)
    assert (scores.name, scores.kind) == ("Functional#1", LayerKind.MATMUL)
    assert (scores.G, scores.N, scores.C, scores.M) == (16, 8, 8, 8)  # G = 2 x 8 batch
    assert "aten.mul" not in ops(w)
    assert ops(w) == {"aten._softmax": 1}


def test_weight_times_activation_is_fc() -> None:
    class Left(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(5, 7))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w @ x  # [5, 7] @ [7, 3]: three columns are three FC rows

    (layer,) = workload_from_module(Left(), torch.randn(7, 3)).layers
    assert (layer.kind, layer.N, layer.C, layer.M) == (LayerKind.FC, 3, 7, 5)


def test_attention_products_are_matmul_layers() -> None:
    def sdpa_macs(b: int, h: int, L: int, s: int, e: int) -> int:  # noqa: N803
        return sdpa_flop_count((b, h, L, e), (b, h, s, e), (b, h, s, e)) // 2

    class Attend(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 4, 10, 16), torch.randn(2, 4, 12, 16), torch.randn(2, 4, 12, 16)
    qk, av = workload_from_module(Attend(), (q, k, v)).layers
    assert (qk.kind, qk.G, qk.N, qk.C, qk.M) == (LayerKind.MATMUL, 8, 10, 16, 12)
    assert (av.kind, av.G, av.N, av.C, av.M) == (LayerKind.MATMUL, 8, 10, 12, 16)
    assert qk.macs + av.macs == sdpa_macs(2, 4, 10, 12, 16)
    # scores and probabilities stay inside the fused kernel: not measured
    assert (qk.density.ofmaps, qk.density.ofmaps_rlc_pairs) == (1.0, None)
    assert (av.density.ifmaps, av.density.ifmaps_rlc_pairs) == (1.0, None)


def test_multihead_attention_is_captured_despite_the_fast_path() -> None:
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 32)
    fast = torch.backends.mha.get_fastpath_enabled()
    w = workload_from_module(mha, (x, x, x))
    assert torch.backends.mha.get_fastpath_enabled() == fast
    assert [(layer.name, layer.kind) for layer in w] == [
        ("MultiheadAttention", LayerKind.FC),  # in_proj: q, k, v in one product
        ("MultiheadAttention#1", LayerKind.MATMUL), ("MultiheadAttention#2", LayerKind.MATMUL),
        ("MultiheadAttention#3", LayerKind.FC)]  # out_proj
    assert w.macs == 2 * 5 * 32 * 32 * 4 + 2 * 4 * 5 * 5 * 8 * 2


def test_pruning_masks_set_the_weight_density() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    prune.l1_unstructured(conv, "weight", amount=0.75)
    (layer,) = workload_from_module(conv, torch.randn(1, 8, 12, 12)).layers
    assert layer.density.weights == pytest.approx(0.25)
    assert layer.density.weights_rlc_pairs == tensor_stats(conv.weight)[1]
    assert layer.kind == LayerKind.CONV  # weight_orig * weight_mask is not an activation


def test_ifmap_density_excludes_padding() -> None:
    x = torch.ones(1, 1, 8, 8)
    x[..., ::2] = 0.0  # half the input is zero
    (layer,) = workload_from_module(nn.Conv2d(1, 1, 3, padding=2), x).layers
    assert layer.H == 12  # the padded size...
    assert layer.density.ifmaps == 0.5  # ... but only the stored input is measured
    assert layer.density.ifmaps_rlc_pairs == tensor_stats(x)[1]


def test_ofmap_density_after_fused_chain() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                        nn.Conv2d(8, 8, 3)).eval()
    x = torch.randn(1, 3, 16, 16)
    first, second = workload_from_module(net, x).layers
    with torch.no_grad():
        written = net[2](net[1](net[0](x)))
        last = net(x)
    assert first.density.ofmaps == pytest.approx(density(written)) and first.density.ofmaps < 0.9
    assert second.density.ifmaps == first.density.ofmaps
    assert (second.density.ofmaps, second.density.ofmaps_rlc_pairs) == tensor_stats(last)


def test_ofmap_density_stops_at_a_residual_add() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x) + x)

    net, x = Residual(), torch.randn(1, 4, 8, 8)
    (layer,) = workload_from_module(net, x).layers
    with torch.no_grad():
        raw = net.conv(x)
    # the add takes two activations: the conv output is written before it, unfused
    assert (layer.density.ofmaps, layer.density.ofmaps_rlc_pairs) == tensor_stats(raw)


def test_repeated_module_names_get_suffixes() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(self.conv(x)))

    w = workload_from_module(Twice(), torch.randn(1, 3, 4, 4), measure_density=False)
    assert [layer.name for layer in w] == ["conv", "conv#1", "conv#2"]


def test_training_flags_are_restored() -> None:
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.Dropout(0.5)).train()
    before = net[1].running_mean.clone()
    workload_from_module(net, torch.randn(2, 3, 4, 4))
    assert all(m.training for m in net.modules())
    assert torch.equal(net[1].running_mean, before)  # ran in eval mode


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="needs an nn.Module, got function"):
        workload_from_module(lambda x: x, torch.randn(1, 2))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must be a tensor or a non-empty tuple of tensors, "
                       "got dict"):
        workload_from_module(nn.Linear(2, 2), {"x": torch.randn(1, 2)})  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"model 'Linear' rejected inputs of shape \[\(1, 3\)\]: "
                       "RuntimeError: mat1 and mat2 shapes cannot be multiplied"):
        workload_from_module(nn.Linear(2, 2), torch.randn(1, 3))
    with pytest.raises(ModelLoadError, match="ran no operator the energy model maps .*aten.relu"):
        workload_from_module(nn.ReLU(), torch.randn(4))
    listed = workload_from_module(nn.Linear(2, 2), [torch.randn(1, 2)])  # type: ignore[arg-type]
    assert listed.macs == 4


def test_extract_workload_dispatch() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    a = extract_workload(net, batch=2, input_shape=(3, 8, 8), name="tiny")
    b = extract_workload(net, torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(0)))
    assert (a.name, a.layers[0].N) == ("tiny", 2)
    assert a.layers[0].density == b.layers[0].density  # the same seeded input
    unmeasured = extract_workload(net, batch=2, input_shape=(3, 8, 8), measure_density=False)
    assert unmeasured.layers[0].density.ofmaps_rlc_pairs is None
    with pytest.raises(InputError, match="needs example_inputs or an input_shape"):
        extract_workload(net)
    with pytest.raises(InputError, match="cannot extract a workload from a int"):
        extract_workload(3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="ONNX file 'model.onnx' does not exist"):
        extract_workload("model.onnx", torch.randn(1))  # ONNX takes examples too (own tests)


# Whole torchvision networks, batch 1, 224 x 224, random weights. MACs from
# FlopCounterMode; it has no formula for the CPU attention kernel, so the test adds
# one (stock FlopCounterMode reports 16.85 G for vit_b_16, without Q.K^T and attn.V).
NETWORKS = {
    "alexnet": 714_188_480,
    "vgg16": 15_470_264_320,
    "resnet50": 4_089_184_256,
    "mobilenet_v2": 300_774_272,
    "squeezenet1_0": 818_924_576,
    "googlenet": 1_498_376_192,
    "vit_b_16": 17_563_828_224,
}


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(**kwargs).eval()


def flop_counter_macs(model: nn.Module, x: torch.Tensor) -> int:
    def cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs):  # type: ignore[no-untyped-def]
        return sdpa_flop_count(q, k, v)

    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA op has no formula either
    try:
        mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return counter.get_total_flops() // 2


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_torchvision_macs_match_flop_counter(name: str) -> None:
    model = build(name)
    x = torch.randn(1, 3, 224, 224)
    w = workload_from_module(model, x)
    assert w.macs == flop_counter_macs(model, x) == NETWORKS[name]
    assert w.name == type(model).__name__
    assert len({layer.name for layer in w}) == len(w)
    unmodelled = ops(w)
    if name == "vit_b_16":
        kinds = [layer.kind for layer in w]
        assert kinds.count(LayerKind.MATMUL) == 24  # Q.K^T and attn.V in 12 blocks
        assert w.layer("encoder.layers.encoder_layer_0.self_attention#1").G == 12
        assert unmodelled["aten.gelu"] == 12
    else:
        assert unmodelled["aten.relu" if name != "mobilenet_v2" else "aten.hardtanh"] > 0
    if name in ("alexnet", "vgg16", "resnet50", "squeezenet1_0", "googlenet"):
        assert unmodelled["aten.max_pool2d_with_indices"] > 0
    if name == "mobilenet_v2":
        depthwise = [layer for layer in w if layer.G > 1]
        assert depthwise and all(layer.C == 1 and layer.M == 1 for layer in depthwise)
        assert depthwise[0].name == "features.1.conv.0.0" and depthwise[0].G == 32
    # ReLU networks write sparse ofmaps; every density is a fraction
    assert all(0.0 <= layer.density.ifmaps <= 1.0 for layer in w)
    if name in ("alexnet", "vgg16"):
        assert w.layers[0].density.ofmaps < 0.9
