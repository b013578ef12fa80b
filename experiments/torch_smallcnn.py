"""Ember's SmallCnn in PyTorch, the one definition the side-by-side scripts share
(kronecker-speed/anchor.py, gpu/torch_smallcnn_epoch.py)."""

from torch import nn


def small_cnn(widths=(32, 64, 128), convs_per_stage=2, classes=10):
    """Stages of (3x3 conv without bias, BatchNorm, ReLU) x convs_per_stage and a 2x2 max pool,
    then global average pooling and a linear head: 288,746 parameters with the defaults."""
    layers, channels = [], 3
    for width in widths:
        for _ in range(convs_per_stage):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            channels = width
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)
