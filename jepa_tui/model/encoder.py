"""Online encoder f_θ and EMA target encoder f_θ̄ (paper §3.1, Listing 1; spec §2)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from jepa_tui.config import ModelConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


def feature_side(canvas: int, layers: int, padding: int) -> int:
    """Side in px of the feature map after ``layers`` stride-2 convolutions (kernel 4) of a ``canvas`` px frame."""
    side = canvas
    for _ in range(layers):
        side = (side + 2 * padding - 4) // 2 + 1
    return side


class ConvEncoder(nn.Module):
    """Four stride-2 convolutions (kernel 4, padding ``model.encoder_padding``, 1 by default), flatten, Linear,
    LayerNorm (spec §2.1).

    Input float32 (N, C, H, W) observations in [0, 1] with H = W = ``data.canvas`` and C = ``in_channels``
    (``data.context_frames``: 1, the paper's single frame, or consecutive frames as channels); output (N,
    latent_dim) latents.
    """

    def __init__(self, cfg: ModelConfig, canvas: int, in_channels: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = (in_channels, *cfg.encoder_channels)
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            # In-place ReLU on channels-last maps is ~30 % faster per CPU step than an out-of-place one.
            activation = nn.ReLU(inplace=True) if cfg.encoder_activation == "relu" else nn.GELU()
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=cfg.encoder_padding), activation]
        self.convs = nn.Sequential(*layers)
        side = feature_side(canvas, len(cfg.encoder_channels), cfg.encoder_padding)
        self.proj = nn.Linear(channels[-1] * side * side, cfg.latent_dim)
        self.norm = nn.LayerNorm(cfg.latent_dim)
        self.channels_last = True  # faster convolutions on CPU; off in run groups (vmap has no channels-last)
        # A one-channel frame is laid out alike in both formats, but its convolution's weight gradient is ~2.5x
        # slower on CPU when asked for channels-last: with gradients (the online encoder) the first layer keeps the
        # default layout (the same numbers); without (the target encoder) channels-last saves converting its output.
        self._first_layer_default = in_channels == 1

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, latent_dim)."""
        features = frames
        if self.channels_last:
            layers = iter(self.convs)
            if self._first_layer_default and torch.is_grad_enabled():
                features = next(layers)(features.contiguous())
                features = next(layers)(features)  # its activation
            features = features.contiguous(memory_format=torch.channels_last)
            for layer in layers:
                features = layer(features)
        else:
            features = self.convs(features)
        return self.norm(self.proj(features.flatten(1)))


def make_target(encoder: nn.Module) -> nn.Module:
    """A deep copy of ``encoder`` with gradients off, to be moved by :func:`ema_update`."""
    target = copy.deepcopy(encoder)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """θ̄ ← τ·θ̄ + (1 − τ)·θ for every parameter (spec §2.2). ``tau = 1`` leaves the target frozen."""
    if tau >= 1.0:
        return
    target_params = list(target.parameters())
    online_params = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(target_params, online_params, 1.0 - tau)
