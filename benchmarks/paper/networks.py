"""Networks of the paper analysis: Caffe AlexNet by hand, the others from torchvision.

AlexNet is the network of ISCA 2016 Table II and of the CVPR 2017 results: 227 x 227
input, 96-256-384-384-256 filters, CONV2/CONV4/CONV5 split in two groups (Caffe), shapes
from ``shared/reference/energy-model.md`` section 2.3 (H padded). It is written here as a
`Workload` by hand, so its shapes do not depend on any extractor. `CaffeAlexNet` is the
same network as a torch module, used only to measure activation densities on sample
inputs; `caffe_alexnet` checks that the module's extracted shapes equal the hand-written
ones before taking its densities.
"""

from __future__ import annotations

from dataclasses import replace

from nnjoules.energy.workload import Density, Layer, LayerKind, Workload

# name, kind, G, M (per group), C (per group), H, R, E, U  -- ISCA 2016 Table II
CAFFE_ALEXNET = (
    ("conv1", LayerKind.CONV, 1, 96, 3, 227, 11, 55, 4),
    ("conv2", LayerKind.CONV, 2, 128, 48, 31, 5, 27, 1),
    ("conv3", LayerKind.CONV, 1, 384, 256, 15, 3, 13, 1),
    ("conv4", LayerKind.CONV, 2, 192, 192, 15, 3, 13, 1),
    ("conv5", LayerKind.CONV, 2, 128, 192, 15, 3, 13, 1),
    ("fc6", LayerKind.FC, 1, 4096, 256, 6, 6, 1, 1),
    ("fc7", LayerKind.FC, 1, 4096, 4096, 1, 1, 1, 1),
    ("fc8", LayerKind.FC, 1, 1000, 4096, 1, 1, 1, 1),
)



def caffe_alexnet_dense(batch: int) -> Workload:
    """Caffe AlexNet (ISCA 2016 Table II), all densities 1, batch ``batch``."""
    layers = tuple(
        Layer(name, kind, N=batch, M=m, C=c, H=h, W=h, R=r, S=r, E=e, F=e, G=g,
              stride=(u, u))
        for name, kind, g, m, c, h, r, e, u in CAFFE_ALEXNET)
    return Workload("alexnet-caffe", layers)


def _caffe_alexnet_module():  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class CaffeAlexNet(nn.Module):
        """AlexNet as in Caffe's bvlc_alexnet (LRN kept; dropout inactive in eval)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
            self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
            self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
            self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
            self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
            self.fc6 = nn.Linear(256 * 6 * 6, 4096)
            self.fc7 = nn.Linear(4096, 4096)
            self.fc8 = nn.Linear(4096, 1000)
            self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)
            self.pool = nn.MaxPool2d(3, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            relu = torch.relu
            x = self.pool(self.lrn(relu(self.conv1(x))))
            x = self.pool(self.lrn(relu(self.conv2(x))))
            x = relu(self.conv3(x))
            x = relu(self.conv4(x))
            x = self.pool(relu(self.conv5(x)))
            x = torch.flatten(x, 1)
            x = relu(self.fc6(x))
            x = relu(self.fc7(x))
            return self.fc8(x)

    torch.manual_seed(0)
    return CaffeAlexNet().eval()


def measured_alexnet_densities(seed: int = 0) -> dict[str, Density]:
    """Densities of Caffe AlexNet measured on one N(0, 1) 227 x 227 image, random weights.

    Raises:
        AssertionError: the module's extracted CONV shapes differ from Table II.
    """
    import torch

    from nnjoules.energy.extract import extract_workload

    module = _caffe_alexnet_module()
    image = torch.randn((1, 3, 227, 227), generator=torch.Generator().manual_seed(seed))
    extracted = extract_workload(module, image, name="alexnet-caffe")
    by_hand = caffe_alexnet_dense(1)
    if len(extracted.layers) != len(by_hand.layers):
        raise AssertionError(f"extracted {len(extracted.layers)} layers, expected 8")
    for got, want in zip(extracted.layers, by_hand.layers, strict=True):
        if want.kind is LayerKind.CONV:
            shape = ("G", "M", "C", "H", "R", "E", "U")
            if any(getattr(got, k) != getattr(want, k) for k in shape):
                raise AssertionError(f"{got.name}: extracted shape differs from Table II")
        if got.macs != want.macs:
            raise AssertionError(f"{got.name}: {got.macs} MACs, Table II gives {want.macs}")
    return {want.name: got.density for got, want in zip(extracted.layers, by_hand.layers,
                                                          strict=True)}


def with_batch(workload: Workload, batch: int) -> Workload:
    """The workload with every layer's N set to ``batch`` (CNN layers only)."""
    return replace(workload, layers=tuple(replace(layer, N=batch) for layer in workload.layers))


def torchvision_workload(name: str, *, seed: int = 0) -> Workload:
    """A torchvision network extracted at batch 1 from one N(0, 1) image (random weights)."""
    from nnjoules.energy.extract import extract_workload
    from nnjoules.models import load_model

    loaded = load_model(name, seed=seed)
    return extract_workload(loaded.model, None, name=name, batch=1,
                            input_shape=loaded.input_shape)
