"""PyTorch capture of constructs that used to break it: each right value worked by hand.

Writes into tensors the model created, empty tensors, higher-order operators, exported
graphs, every matrix-product operator, transposed and 3-D convolutions, bf16, and
errors of the user's inputs or model.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.nn.attention.flex_attention import flex_attention
from torch.utils.flop_counter import FlopCounterMode

from nnjoules.cli import main
from nnjoules.energy.extract import torch_ops, workload_from_module
from nnjoules.energy.extract.sparsity import density
from nnjoules.energy.workload import LayerKind
from nnjoules.errors import InputError


def ops(workload) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {u.op: u.count for u in workload.unmodelled}


def conv_macs(n: int, m: int, c: int, out: tuple[int, ...], kernel: tuple[int, ...]) -> int:
    """N * M * C * prod(output size) * prod(kernel) of a dense convolution (C per group)."""
    total = n * m * c
    for v in (*out, *kernel):
        total *= v
    return total


def flop_counter_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() // 2


# -- activations written into tensors the model created ---------------------------------

class PaddedBuffer(nn.Module):
    """conv1's output written into the middle of a zero buffer that conv2 reads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        buf = torch.zeros(1, 8, 10, 10)
        buf[:, :, 1:9, 1:9] = self.conv1(x)
        return self.fc(self.conv2(buf).flatten(1))


def test_activation_written_into_a_zero_buffer() -> None:
    w = workload_from_module(PaddedBuffer(), torch.randn(1, 3, 8, 8))
    conv1 = conv_macs(1, 8, 3, (8, 8), (3, 3))  # 13,824
    conv2 = conv_macs(1, 8, 8, (8, 8), (3, 3))  # 36,864 on the 10 x 10 buffer
    assert [layer.name for layer in w] == ["conv1", "conv2", "fc"]
    assert w.macs == conv1 + conv2 + 512 * 10 == 55_808
    assert ops(w) == {}
    # conv2 reads the buffer: 8 x 8 of its 10 x 10 values are conv1's (non-zero) output
    assert w.layer("conv2").density.ifmaps == pytest.approx(64 / 100)


def _write(kind: str, buf: torch.Tensor, y: torch.Tensor) -> None:
    rows = torch.arange(y.shape[0])
    if kind == "copy_":
        buf[: y.shape[0]].copy_(y)
    elif kind == "index_put_":
        buf[rows] = y
    elif kind == "index_copy_":
        buf.index_copy_(0, rows, y)
    elif kind == "scatter_":
        buf.scatter_(0, rows[:, None].expand_as(y), y)
    elif kind == "out=":
        torch.add(y, 1.0, out=buf[: y.shape[0]])


@pytest.mark.parametrize("kind", ["copy_", "index_put_", "index_copy_", "scatter_", "out="])
def test_every_kind_of_write_makes_an_activation(kind: str) -> None:
    class Preallocated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            buf = torch.zeros(5, 6)  # two rows stay zero
            _write(kind, buf, self.a(x))
            return self.b(buf)

    w = workload_from_module(Preallocated(), torch.randn(3, 4))
    assert [layer.name for layer in w] == ["a", "b"]
    assert w.macs == 3 * 4 * 6 + 5 * 6 * 3
    assert w.layer("b").density.ifmaps == pytest.approx(3 / 5, abs=0.01)


def test_step_outputs_in_a_preallocated_tensor_and_list() -> None:
    class Steps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell, self.head = nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [T, B, 8]
            out = torch.empty(x.shape)
            steps: list[torch.Tensor | None] = [None] * x.shape[0]
            h = torch.zeros(x.shape[1:])
            for t in range(x.shape[0]):
                h = torch.tanh(self.cell(x[t] + h))
                out[t] = h
                steps[t] = h
            return self.head(out) + self.head(torch.stack(steps))  # type: ignore[arg-type]

    w = workload_from_module(Steps(), torch.randn(5, 2, 8))
    assert w.macs == 5 * (2 * 8 * 8) + 2 * (5 * 2 * 8 * 2)
    assert [layer.name for layer in w][-2:] == ["head", "head#1"]
    assert all(layer.kind == LayerKind.FC for layer in w)


def test_partially_filled_kv_cache_products_are_matmuls() -> None:
    class CachedAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
            self.register_buffer("k_cache", torch.zeros(1, 16, 8))
            self.register_buffer("v_cache", torch.zeros(1, 16, 8))

        def forward(self, x: torch.Tensor, pos: int = 6) -> torch.Tensor:  # x: [1, L, 8]
            end = pos + x.shape[1]
            self.k_cache[:, pos:end] = self.k(x)
            self.v_cache[:, pos:end] = self.v(x)
            scores = self.q(x) @ self.k_cache[:, :end].transpose(1, 2)
            return scores.softmax(-1) @ self.v_cache[:, :end]

    model = CachedAttention()
    w = workload_from_module(model, torch.randn(1, 4, 8))
    products = [layer for layer in w if layer.kind == LayerKind.MATMUL]
    # [4, 10] = q [4, 8] @ keys^T [8, 10]; [4, 8] = attn [4, 10] @ values [10, 8]
    assert [(p.N, p.M, p.C) for p in products] == [(4, 10, 8), (4, 8, 10)]
    assert sum(layer.kind == LayerKind.FC for layer in w) == 3
    # the cache is partially filled: 4 of its 10 rows read are written, 6 are zeros
    assert products[0].density.weights == pytest.approx(4 / 10, abs=0.01)


# -- empty tensors, higher-order operators, exported graphs ----------------------------

def test_linear_on_zero_rows_does_no_macs(caplog: pytest.LogCaptureFixture) -> None:
    class Detect(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = self.conv(x).flatten(2).transpose(1, 2).reshape(-1, 8)
            return self.head(rows[rows.norm(dim=1) > 1e9])  # no row survives

    with caplog.at_level(logging.INFO, logger="nnjoules"):
        w = workload_from_module(Detect(), torch.randn(1, 3, 8, 8))
    assert w.macs == conv_macs(1, 8, 3, (8, 8), (3, 3)) == 13_824
    assert [layer.name for layer in w] == ["conv"]
    assert "head (aten.addmm) ran on an empty tensor: 0 MACs" in caplog.text


def test_flex_attention_is_two_attention_products() -> None:
    class Flex(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return flex_attention(q, k, v)

    q, k, v = (torch.randn(1, 2, 16, 8) for _ in range(3))
    w = workload_from_module(Flex(), (q, k, v))
    per_product = 1 * 2 * 16 * 16 * 8  # [16, 16] = [16, 8] @ [8, 16] per head, and back
    assert w.macs == 2 * per_product == 8_192
    assert [(layer.kind, layer.G) for layer in w] == [(LayerKind.MATMUL, 2)] * 2
    assert ops(w) == {}


@pytest.mark.parametrize(("sign", "taken"), [(1.0, "a"), (-1.0, "b")])
def test_cond_counts_the_branch_taken(sign: float, taken: str,
                                      caplog: pytest.LogCaptureFixture) -> None:
    class Cond(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cond(x.sum() > 0, lambda x: self.a(x), lambda x: self.b(x), (x,))

    with caplog.at_level(logging.WARNING, logger="nnjoules"):
        w = workload_from_module(Cond(), sign * torch.ones(2, 8))
    assert w.macs == 2 * 8 * 8 == 128
    assert [layer.name for layer in w] == [taken]
    branch = "true" if sign > 0 else "false"
    assert f"torch.cond counted only the branch these inputs take (the {branch} branch)" \
        in caplog.text


def test_exported_program_module() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(512, 10))
    x = torch.randn(1, 3, 8, 8)
    exported = torch.export.export(net, (x,)).module()
    w = workload_from_module(exported, x)
    assert w.macs == conv_macs(1, 8, 3, (8, 8), (3, 3)) + 512 * 10 == 18_944
    assert [layer.name for layer in w] == ["0", "3"]  # the source modules' paths
    assert ops(w) == {"aten.relu": 1}
    eager = workload_from_module(net, x)
    assert [lay.density for lay in w] == [lay.density for lay in eager]


# -- matrix products --------------------------------------------------------------------

class Call(nn.Module):
    """A module that applies ``fn`` to its inputs."""

    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(*inputs)


class TanhVector(nn.Module):
    """``tanh(W(h)) @ v``: a matrix times a learned vector."""

    def __init__(self) -> None:
        super().__init__()
        self.W, self.v = nn.Linear(16, 16), nn.Parameter(torch.randn(16))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.W(h)) @ self.v


def _r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


# (model, inputs, MACs worked by hand, layer kinds)
PRODUCTS = {
    "matrix @ learned vector": (TanhVector, (_r(10, 16),), 10 * 16 * 16 + 10 * 16,
                                [LayerKind.FC, LayerKind.FC]),
    # PyTorch (and the ONNX export) run x1 @ A as an FC layer [2, 3] x [3, 5*4], then
    # each sample's [5, 4] x [4] with x2: 2*3*5*4 + 2*5*4
    "nn.Bilinear": (lambda: nn.Bilinear(3, 4, 5), (_r(2, 3), _r(2, 4)), 120 + 40,
                    [LayerKind.FC, LayerKind.MATMUL]),
    "matmul matrix-vector": (lambda: Call(torch.matmul), (_r(4, 8), _r(8)), 32,
                             [LayerKind.MATMUL]),
    "matmul vector-vector": (lambda: Call(torch.matmul), (_r(8), _r(8)), 8,
                             [LayerKind.MATMUL]),
    "mv": (lambda: Call(torch.mv), (_r(4, 8), _r(8)), 32, [LayerKind.MATMUL]),
    "dot": (lambda: Call(torch.dot), (_r(8), _r(8)), 8, [LayerKind.MATMUL]),
    "vdot": (lambda: Call(torch.vdot), (_r(8), _r(8)), 8, [LayerKind.MATMUL]),
    "addmv": (lambda: Call(torch.addmv), (_r(4), _r(4, 8), _r(8)), 32, [LayerKind.MATMUL]),
    "addbmm": (lambda: Call(torch.addbmm), (_r(4, 5), _r(3, 4, 8), _r(3, 8, 5)),
               3 * 4 * 8 * 5, [LayerKind.MATMUL]),
    "Linear on a vector": (lambda: nn.Linear(8, 4), (_r(8),), 32, [LayerKind.FC]),
    "einsum": (lambda: Call(lambda a, b: torch.einsum("bij,bjk->bik", a, b)),
               (_r(2, 3, 4), _r(2, 4, 5)), 2 * 3 * 4 * 5, [LayerKind.MATMUL]),
}


@pytest.mark.parametrize("case", PRODUCTS)
def test_every_matrix_product_variant(case: str) -> None:
    factory, inputs, macs, kinds = PRODUCTS[case]
    w = workload_from_module(factory(), inputs)
    assert w.macs == macs
    assert [layer.kind for layer in w] == kinds
    products = {"aten.mv", "aten.dot", "aten.vdot", "aten.addmv", "aten.addbmm",
                "aten._trilinear"}
    assert not products & set(ops(w))


def test_bilinear_values_match_pytorch_lowering() -> None:
    """The two products of nn.Bilinear reproduce its output: the lowering is exact."""
    bil = nn.Bilinear(3, 4, 5)
    x1, x2 = torch.randn(2, 3), torch.randn(2, 4)
    t = (x1 @ bil.weight.permute(1, 0, 2).reshape(3, 20)).reshape(2, 5, 4)  # the FC layer
    out = (t @ x2[:, :, None])[:, :, 0] + bil.bias  # the per-sample matrix-vector products
    torch.testing.assert_close(out, bil(x1, x2))


# -- transposed and 3-D convolutions ---------------------------------------------------

def test_transposed_conv_after_a_conv() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ConvTranspose2d(8, 4, 2, stride=2))
    w = workload_from_module(net, torch.randn(1, 3, 8, 8))
    # every input value (8 x 8 positions x 8 channels) times every filter tap (4 x 2 x 2)
    assert w.layer("1").macs == 8 * 8 * 8 * 4 * 2 * 2 == 8_192
    assert w.macs == 13_824 + 8_192 == 22_016
    up = w.layer("1")
    assert (up.N, up.C, up.M, up.op) == (64, 8, 16, "aten.convolution[transposed]")
    assert ops(w) == {}  # kernel 2, stride 2: windows do not overlap


def test_transposed_conv_alone() -> None:
    w = workload_from_module(nn.ConvTranspose2d(32, 1, 3), torch.randn(1, 32, 1, 1))
    assert w.macs == 32 * 1 * 3 * 3 == 288
    assert ops(w) == {}  # one input position: nothing to overlap


CONVS = {
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1,
                                                   output_padding=1), (1, 4, 7)),
    "ConvTranspose2d groups dilation": (lambda: nn.ConvTranspose2d(
        4, 6, (3, 2), stride=(1, 2), dilation=(2, 1), groups=2), (2, 4, 5, 6)),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(2, 3, 2, stride=2), (1, 2, 3, 4, 5)),
    "Conv3d": (lambda: nn.Conv3d(2, 4, 3, stride=(2, 1, 1), padding=1), (1, 2, 6, 5, 5)),
    "Conv3d groups dilation": (lambda: nn.Conv3d(4, 6, (2, 3, 3), dilation=(2, 1, 2),
                                                 groups=2), (2, 4, 5, 6, 7)),
    "Conv1d": (lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1), (2, 3, 9)),
}


@pytest.mark.parametrize("case", CONVS)
def test_conv_family_matches_flop_counter(case: str) -> None:
    factory, shape = CONVS[case]
    model, x = factory(), torch.randn(*shape)
    w = workload_from_module(model, x)
    conv = model
    c = conv.in_channels // conv.groups
    if conv.transposed:  # each input value times each filter tap
        expected = conv_macs(shape[0], conv.out_channels, c, shape[2:], conv.kernel_size)
    else:
        expected = conv_macs(shape[0], conv.out_channels, c, model(x).shape[2:],
                             conv.kernel_size)
    assert w.macs == expected == flop_counter_macs(model, x)
    assert w.num_weights == conv.weight.numel()


def test_conv3d_lowering_letters() -> None:
    w = workload_from_module(nn.Conv3d(2, 4, 3, padding=(0, 1, 1)), torch.randn(1, 2, 5, 6, 6))
    (layer,) = w.layers
    # output depth 3: three 2-D convolutions over 2 channels x 3 kernel slices
    assert (layer.N, layer.C, layer.M, layer.H, layer.R, layer.E) == (3, 6, 4, 8, 3, 6)
    assert layer.op == "aten.convolution[3d]"


def test_overlapping_transposed_windows_report_their_adds() -> None:
    w = workload_from_module(nn.ConvTranspose2d(4, 2, 3, stride=2), torch.randn(1, 4, 5, 5))
    assert w.macs == 5 * 5 * 4 * 2 * 3 * 3
    assert ops(w) == {"aten.convolution transposed overlap-add": 1}


# -- precision, inputs and the model's own errors --------------------------------------

def test_bf16_model_lists_no_operator_of_the_density_measurement() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(288, 4))
    x = torch.randn(1, 3, 8, 8)
    full = workload_from_module(net, x)
    half = workload_from_module(net.to(torch.bfloat16), x.to(torch.bfloat16))
    assert ops(half) == ops(full) == {"aten.relu": 1}
    relu_out = F.relu(net[0](x.to(torch.bfloat16)))
    assert half.layer("0").density.ofmaps == pytest.approx(density(relu_out.float()))


def test_non_tensor_input_is_named() -> None:
    class TwoIn(nn.Module):
        def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
            return x * scale

    with pytest.raises(InputError, match=r"example inputs of TwoIn: element 1 is a float "
                                         r"\(0.5\), not a tensor"):
        workload_from_module(TwoIn(), (torch.randn(2), 0.5))  # type: ignore[arg-type]


def test_an_error_of_the_model_is_an_input_error() -> None:
    class Picky(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[-1] == 224, f"Wrong image width! Expected 224 but got {x.shape[-1]}!"
            return x

    with pytest.raises(InputError, match=r"^model 'Picky' rejected inputs of shape "
                       r"\[\(1, 3, 8, 8\)\]: AssertionError: Wrong image width! Expected 224 "
                       r"but got 8!$"):
        workload_from_module(Picky(), torch.randn(1, 3, 8, 8))


def test_a_fault_of_the_capture_is_not_blamed_on_the_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args, out, is_act):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("handler bug")

    monkeypatch.setitem(torch_ops.HANDLERS, torch.ops.aten.addmm, broken)
    with pytest.raises(ZeroDivisionError, match="handler bug"):
        workload_from_module(nn.Linear(2, 2), torch.randn(1, 2))


def test_cli_model_rejecting_the_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "vit_b_16", "--input-shape", "3,256,256"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nnjoules: error: model 'vit_b_16' rejected inputs of shape "
                   "[(1, 3, 256, 256)]: AssertionError: Wrong image height! Expected 224 but "
                   "got 256!"]
