"""The papers' network notation, written one way for every method and the accelerator.

A fully connected network is its layer sizes joined by ``-`` (``"784-800-10"``); a convolutional
one starts with the input map (``"28x28"``), then ``<channels>C<kernel>`` per convolution,
``P<size>`` per pooling, the flattened size before the first fully connected layer where a method
names it, and the fully connected sizes (``"28x28-16C3-P2-32C3-P2-800-128-10"``).
"""

from __future__ import annotations

from collections.abc import Iterable


def layer_sizes_name(sizes: Iterable[int]) -> str:
    """``[784, 800, 10]`` -> ``"784-800-10"``.

    >>> layer_sizes_name([784, 800, 10])
    '784-800-10'
    """
    return "-".join(str(int(n)) for n in sizes)


def input_map_name(shape: Iterable[int]) -> str:
    """An input map ``(28, 28)`` -> ``"28x28"`` (a single channel is not written)."""
    dims = [int(n) for n in shape]
    return "x".join(str(n) for n in (dims[1:] if len(dims) == 3 and dims[0] == 1 else dims))


def conv_name(channels: int, kernel: int) -> str:
    """A convolution of ``channels`` output maps and ``kernel x kernel`` weights: ``"16C3"``."""
    return f"{channels}C{kernel}"


def pool_name(size: int) -> str:
    """A ``size x size`` pooling: ``"P2"``."""
    return f"P{size}"
