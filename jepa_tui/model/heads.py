"""Extra heads of the JEPA family's objectives (trained with the model, unused at evaluation)."""

from __future__ import annotations

import torch
from torch import nn


class DynamicsHead(nn.Module):
    """Seed 002's DynHead (§3.6, App. A): Linear(in → hidden) → GELU → Linear(hidden → d), predicting the target
    encoder's latent change h_{t+1} − h_t from the online latent z_t (from Z_dyn only when FWM is on)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in) -> (N, d)."""
        return self.net(z)
