"""Built-in residual and depthwise-separable CNNs for 28x28 inputs (see `builtin`).

* ``resnet20``: ResNet-20 (He et al., 2016, the CIFAR variant): a 3x3 stem, three stages
  of three basic blocks (two 3x3 convolutions with BatchNorm, and a residual addition),
  ``width``-``2 width``-``4 width`` channels at 28x28, 14x14 and 7x7; the first block of
  stages 2 and 3 downsamples with stride 2 and its shortcut is a 1x1 convolution with
  BatchNorm (option B). Global average pooling, one FC layer.
* ``mobilenetv2``: a small MobileNetV2 (Sandler et al., 2018): a 3x3 stem, inverted
  residual blocks (1x1 expansion, 3x3 depthwise, 1x1 linear bottleneck with no ReLU
  after it; a residual addition where shapes allow), a 1x1 convolution to 128 channels,
  global average pooling, one FC layer.

Sizes (10 classes, 28x28x1; `tests/test_models_builtin.py` checks them):
``resnet20`` (width 16) 272,186 parameters, 31.0 M MACs per image (22 convolution
and linear layers); ``mobilenetv2`` 36,218 parameters, 2.7 M MACs per image (23 layers,
7 of them depthwise). ``nnjoules estimate NAME`` lists the layers. One training epoch of
50,000 images took 96 s (resnet20) and 67 s (mobilenetv2) on one thread of an idle
2-core machine (a batch of 128: 246 ms and 171 ms).
"""

from __future__ import annotations

from torch import Tensor, nn


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
             ) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups,
                      bias=False), nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut (identity, or 1x1 conv-BN when the
    block changes the shape), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = _conv_bn(c_out, c_out, 3)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))

    def forward(self, x: Tensor) -> Tensor:
        """``[N, c_in, H, W] -> [N, c_out, H / stride, W / stride]``."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 for ``in_channels`` x 28 x 28 inputs (module doc)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.input_shape = (in_channels, 28, 28)
        self.stem = nn.Sequential(*_conv_bn(in_channels, width, 3), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for index in range(3):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
        self.layers = nn.Sequential(*blocks)           # 28x28, 14x14, 7x7
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[N, num_classes]``."""
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (skipped for ``expand`` 1), 3x3 depthwise with
    ``stride``, 1x1 linear projection; the input is added when the shape is unchanged."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(),
                   *_conv_bn(hidden, c_out, 1)]  # linear bottleneck: no ReLU
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        """``[N, c_in, H, W] -> [N, c_out, H / stride, W / stride]``."""
        return x + self.conv(x) if self.residual else self.conv(x)


# (expansion t, output channels c, blocks n, stride of the first s), as in the paper's
# Table 2, cut to three resolutions for 28x28: 28x28, 14x14, 7x7.
MOBILENETV2_BLOCKS = ((1, 8, 1, 1), (4, 16, 2, 2), (4, 24, 2, 2), (4, 32, 2, 1))


class MobileNetV2(nn.Module):
    """A small MobileNetV2 for ``in_channels`` x 28 x 28 inputs (module doc)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, stem: int = 16,
                 last: int = 128) -> None:
        super().__init__()
        self.input_shape = (in_channels, 28, 28)
        layers: list[nn.Module] = [*_conv_bn(in_channels, stem, 3), nn.ReLU6()]
        c_in = stem
        for expand, c_out, count, stride in MOBILENETV2_BLOCKS:
            for index in range(count):
                layers.append(InvertedResidual(c_in, c_out, stride if index == 0 else 1,
                                               expand))
                c_in = c_out
        layers += [*_conv_bn(c_in, last, 1), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[N, num_classes]``."""
        return self.classifier(self.pool(self.features(x)).flatten(1))
