"""The papers' network notation, written one way for every method and the accelerator.

A fully connected network is its layer sizes joined by ``-`` (``"784-800-10"``); a convolutional
one starts with the input map (``"28x28"``), then ``<channels>C<kernel>`` per convolution,
``P<size>`` per pooling, the flattened size before the first fully connected layer where a method
names it, and the fully connected sizes (``"28x28-16C3-P2-32C3-P2-800-128-10"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LAYER_TOKEN = re.compile(r"^(?:[1-9][0-9]*|[1-9][0-9]*C[1-9][0-9]*|P[1-9][0-9]*)$")
"""One hidden layer in the papers' grammar, shared by every method's ``model.layers``: ``"800"`` a
fully connected layer of 800 neurons, ``"16C3"`` a valid stride-1 convolution of 16 maps with 3x3
kernels, ``"P2"`` a 2x2 pooling of stride 2."""

LAYER_TOKEN_HELP = "'<N>' (fully connected), '<C>C<k>' (convolution) or 'P<p>' (pooling), every number >= 1"


@dataclass(frozen=True)
class LayerToken:
    """A parsed :data:`LAYER_TOKEN`.

    Attributes:
        kind: ``"fc"``, ``"conv"`` or ``"pool"``.
        size: neurons (fc), output maps (conv) or window (pool).
        kernel: the convolution's kernel size (0 otherwise).
    """

    kind: str
    size: int
    kernel: int = 0


def parse_layer(token: str) -> LayerToken:
    """``"800"`` -> fc 800, ``"16C3"`` -> conv 16 maps of 3x3, ``"P2"`` -> pool 2.

    >>> parse_layer("16C3")
    LayerToken(kind='conv', size=16, kernel=3)

    Raises:
        ValueError: a token outside :data:`LAYER_TOKEN`, naming it.
    """
    if not LAYER_TOKEN.match(str(token)):
        raise ValueError(f"{token!r} is not {LAYER_TOKEN_HELP}")
    if token.startswith("P"):
        return LayerToken("pool", int(token[1:]))
    if "C" in token:
        maps, kernel = token.split("C")
        return LayerToken("conv", int(maps), int(kernel))
    return LayerToken("fc", int(token))


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
