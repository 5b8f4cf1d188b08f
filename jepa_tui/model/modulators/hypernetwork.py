"""Track E (hypernetwork, Ha et al. 2017; the paper's §5.3 future work): e generates full-rank per-sample ΔW1
(H × d) and ΔW2 (d × H) through a 2-layer MLP, one chunk per hidden unit j: φ_j(e) = GELU(W_e e + W_c c_j + b) with
c_j learned chunk embeddings, and (ΔW1[j, :], ΔW2[:, j]) = (U1, U2) (φ_j(e) − φ_j(0)) / hh.

Like Track B's W_inj and Track C's generator G, the generated deltas vanish at e = 0 (an empty buffer gives Track A
exactly), and the 1/hh keeps the generated weights' Adam steps the size of a directly learned weight's; without
both, the deltas learned while the buffer is empty exploded when it filled (‖ΔW1‖_F 0.7 → 590, σ_z → 0; README,
"Beyond the paper"). The last layer U starts at zero, so E starts as a no-op. Because it is linear, ΔW1 x and ΔW2 h
are computed from φ without forming ΔW: (ΔW1 x)_j = (φ_j(e) − φ_j(0)) · (U1ᵀ x) / hh and
ΔW2 h = U2 Σ_j h_j (φ_j(e) − φ_j(0)) / hh, ``memory.hyper_block`` hidden units at a time (one block of all H by
default, computed once per rollout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from jepa_tui.config import MemoryConfig, ModelConfig
from jepa_tui.model.modulators import Modulator


class PhiGradient:
    """∂L/∂φ of one φ tensor, summed in place by the products that read φ.

    Every rollout step reads φ twice, so autograd would form 2 × steps fresh N × B × K gradient tensors and add them
    up; the products instead add theirs into this one buffer (``addcmul_``) and :class:`HyperFeatures` takes the sum
    from it. On 2 CPU cores that is most of what Track E's step cost beyond Track C's.
    """

    def __init__(self) -> None:
        self.grad: torch.Tensor | None = None

    def add(self, a: torch.Tensor, b: torch.Tensor, like: torch.Tensor) -> None:
        """Add the broadcast product a ⊙ b (φ's shape, e.g. (N, B, 1) and (N, 1, K)) in ``like``'s dtype."""
        if self.grad is None:
            self.grad = (a * b).to(like.dtype)
        else:
            self.grad.addcmul_(a, b)

    def take(self) -> torch.Tensor | None:
        """The sum so far, and an empty buffer for the next backward pass."""
        grad, self.grad = self.grad, None
        return grad


class HyperFeatures(torch.autograd.Function):
    """φ_njk = GELU(a_nk + c_jk) − φ0_jk: Track E's per-sample features relative to e = 0, from a = W_e e + b
    (N, K), the chunks' c = W_c c_j (B, K) and φ0 = GELU(c + b) (B, K); (N, B, K).

    One node instead of autograd's add, GELU, subtraction and their broadcast reductions; its backward takes ∂L/∂φ
    from ``tape`` (what the products summed there, :class:`PhiGradient`) plus any gradient that reached φ directly,
    and runs after every product that read φ (they read its output). The subtraction and GELU's backward write into
    tensors this node owns (GELU's output, the tape's sum) instead of allocating another N × B × K tensor each: the
    same values, Track E's step 3.5 % faster on 2 CPU cores.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, c: torch.Tensor, phi0: torch.Tensor, tape: PhiGradient | None = None
                ) -> torch.Tensor:
        pre = a[:, None, :] + c[None]
        ctx.save_for_backward(pre)
        ctx.tape = tape
        ctx.dtypes = (a.dtype, c.dtype, phi0.dtype)
        ctx.set_materialize_grads(False)
        phi = F.gelu(pre)
        if phi.dtype != phi0.dtype:  # bf16 autocast: a bf16 GELU minus a float32 φ0 gives a float32 φ
            return phi - phi0[None]
        return phi.sub_(phi0[None])

    @staticmethod
    def backward(ctx, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        (pre,) = ctx.saved_tensors
        summed = ctx.tape.take() if ctx.tape is not None else None
        owned = summed is not None  # the tape's buffer (or a sum made here), never autograd's own gradient
        if grad is not None:
            summed = grad if summed is None else summed + grad
        if summed is None:
            return None, None, None, None
        grad_phi0 = -summed.sum(0)
        if owned and summed.dtype == pre.dtype:  # GELU's backward overwrites the sum, read by now
            grad_pre = torch.ops.aten.gelu_backward.grad_input(summed, pre, grad_input=summed)
        else:
            grad_pre = torch.ops.aten.gelu_backward(summed.to(pre.dtype), pre)
        grad_a, grad_c = grad_pre.sum(1), grad_pre.sum(0)
        return (*(g.to(dtype) for g, dtype in zip((grad_a, grad_c, grad_phi0), ctx.dtypes, strict=True)), None)


def _phi_gradient(tape: PhiGradient | None, a: torch.Tensor, b: torch.Tensor, phi: torch.Tensor
                  ) -> torch.Tensor | None:
    """a ⊙ b as φ's gradient, or added to ``tape`` (then None: the tape delivers it)."""
    if tape is None:
        return (a * b).to(phi.dtype)
    tape.add(a, b, phi)
    return None


class PhiTimesVector(torch.autograd.Function):
    """y_nb = Σ_k φ_nbk u_nk per sample: φ (N, B, K), u (N, K) -> (N, B); Track E's ΔW1 x.

    The forward is one batched row-vector product; the backward forms ∂L/∂φ as the broadcast product g_nb u_nk,
    added to ``tape`` when one is given (:class:`PhiGradient`), where autograd of ``einsum`` would run a batched
    outer-product matmul and a strided one for ∂L/∂u. The same values to rounding, about 3× faster on CPU
    (tests/test_modulators.py checks both against autograd).
    """

    @staticmethod
    def forward(ctx, phi: torch.Tensor, u: torch.Tensor, tape: PhiGradient | None = None) -> torch.Tensor:
        ctx.save_for_backward(phi, u)
        ctx.tape = tape
        return torch.bmm(u[:, None, :], phi.transpose(1, 2))[:, 0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        phi, u = ctx.saved_tensors
        g = grad.to(torch.promote_types(phi.dtype, u.dtype))  # under bf16 autocast the product ran in bf16
        grad_phi = _phi_gradient(ctx.tape, g[:, :, None], u[:, None, :], phi) if ctx.needs_input_grad[0] else None
        grad_u = torch.bmm(g[:, None, :], phi.to(g.dtype))[:, 0].to(u.dtype) if ctx.needs_input_grad[1] else None
        return grad_phi, grad_u, None


class VectorTimesPhi(torch.autograd.Function):
    """v_nk = Σ_b h_nb φ_nbk per sample: φ (N, B, K), h (N, B) -> (N, K); Track E's ΔW2 h before U2 (see
    :class:`PhiTimesVector`)."""

    @staticmethod
    def forward(ctx, phi: torch.Tensor, h: torch.Tensor, tape: PhiGradient | None = None) -> torch.Tensor:
        ctx.save_for_backward(phi, h)
        ctx.tape = tape
        return torch.bmm(h[:, None, :], phi)[:, 0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        phi, h = ctx.saved_tensors
        g = grad.to(torch.promote_types(phi.dtype, h.dtype))
        grad_phi = _phi_gradient(ctx.tape, h[:, :, None], g[:, None, :], phi) if ctx.needs_input_grad[0] else None
        grad_h = (torch.bmm(g[:, None, :], phi.to(g.dtype).transpose(1, 2))[:, 0].to(h.dtype)
                  if ctx.needs_input_grad[1] else None)
        return grad_phi, grad_h, None


@dataclass
class HyperModulation:
    """Track E's modulation for one rollout: the pre-activations of φ from e (N, hh), and from the chunks at e = 0
    (H, hh) with their activations φ_j(0)."""

    hyper: HyperNetwork
    from_e: torch.Tensor
    from_chunks: torch.Tensor
    at_zero: torch.Tensor
    whole: tuple[torch.Tensor, PhiGradient | None] | None = None  # φ(e) − φ(0) of all hidden units (one block)

    def blocks(self):
        """(j0, φ(e) − φ(0), its gradient tape) for each block of hidden units: (N, block, hh). When one block
        covers every hidden unit it is computed once and reused by every step of the rollout (it is the only block
        there is), its gradient summed over the steps in one buffer."""
        block, hidden = self.hyper.block, self.from_chunks.shape[0]
        if block >= hidden:
            if self.whole is None:
                self.whole = self._phi(0, hidden)
            yield (0, *self.whole)
            return
        for j0 in range(0, hidden, block):
            yield (j0, *self._phi(j0, j0 + block))

    def _phi(self, j0: int, j1: int) -> tuple[torch.Tensor, PhiGradient | None]:
        """φ_j(e) − φ_j(0) for hidden units j0 ≤ j < j1, (N, j1 − j0, hh), and the tape its products add their
        gradients to (none while compiling: a compiled graph takes the plain gradients)."""
        tape = None if torch.compiler.is_compiling() else PhiGradient()
        return HyperFeatures.apply(self.from_e, self.from_chunks[j0:j1], self.at_zero[j0:j1], tape), tape

    def delta1(self, x: torch.Tensor) -> torch.Tensor:
        """ΔW1 x per sample: (N, in) -> (N, H)."""
        u = (x @ self.hyper.out1.weight) * self.hyper.scale  # (N, hh)
        return torch.cat([PhiTimesVector.apply(phi, u, tape) for _, phi, tape in self.blocks()], dim=1)

    def delta2(self, h: torch.Tensor) -> torch.Tensor:
        """ΔW2 h per sample: (N, H) -> (N, d)."""
        v = sum(VectorTimesPhi.apply(phi, h[:, j0:j0 + phi.shape[1]], tape) for j0, phi, tape in self.blocks())
        return F.linear(v * self.hyper.scale, self.hyper.out2.weight)

    def apply(self, predictor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """(W2 + ΔW2) σ((W1 + ΔW1) x + b1) + b2 per sample: (N, in) -> (N, d)."""
        h = predictor.act(predictor.w1(x) + self.delta1(x))
        return predictor.w2(h) + self.delta2(h)

    def materialise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample ΔW1 (N, H, in) and ΔW2 (N, d, H). For tests and norms on a few samples only."""
        phi = torch.cat([p for _, p, _ in self.blocks()], dim=1) * self.hyper.scale  # (N, H, hh)
        return F.linear(phi, self.hyper.out1.weight), F.linear(phi, self.hyper.out2.weight).transpose(1, 2)


class HyperNetwork(nn.Module):
    """Track E's weight generator (Ha et al. 2017): learned chunk embeddings c_j (H × chunk_dim), one per hidden unit,
    and a 2-layer MLP [e; c_j] → hh → (ΔW1[j, :], ΔW2[:, j]), taken relative to e = 0 and scaled by 1/hh (module
    docstring), whose bias-free output layer starts at zero."""

    def __init__(self, exp_dim: int, in_dim: int, hidden: int, latent: int, hyper_hidden: int, chunk_dim: int,
                 block: int) -> None:
        super().__init__()
        self.block = block
        self.scale = 1.0 / hyper_hidden
        self.chunks = nn.Parameter(torch.randn(hidden, chunk_dim) * 0.02)
        self.from_e = nn.Linear(exp_dim, hyper_hidden)
        self.from_chunk = nn.Linear(chunk_dim, hyper_hidden, bias=False)
        self.out1 = nn.Linear(hyper_hidden, in_dim, bias=False)
        self.out2 = nn.Linear(hyper_hidden, latent, bias=False)
        nn.init.zeros_(self.out1.weight)
        nn.init.zeros_(self.out2.weight)

    def modulation(self, e: torch.Tensor) -> HyperModulation:
        """(N, d_e) -> the per-rollout :class:`HyperModulation`."""
        from_chunks = self.from_chunk(self.chunks)  # (H, hh)
        return HyperModulation(self, self.from_e(e), from_chunks, F.gelu(from_chunks + self.from_e.bias))


class HyperModulator(Modulator):
    """A hypernetwork generating both predictor layers' weights per sample (layer ``hyper``;
    ``memory.hyper_hidden``, ``hyper_chunk_dim``, ``hyper_block``)."""

    def build(self, model: ModelConfig, memory: MemoryConfig, in_dim: int) -> dict[str, nn.Module]:
        return {"hyper": HyperNetwork(memory.exp_dim, in_dim, model.hidden_dim, model.latent_dim, memory.hyper_hidden,
                                      memory.hyper_chunk_dim, memory.hyper_block)}

    def modulate(self, predictor: nn.Module, e: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> HyperModulation:
        return predictor.hyper.modulation(e)

    def norms(self, predictor: nn.Module, e: torch.Tensor,
              scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """Batch-mean ‖ΔW1‖_F and ‖ΔW2‖_F of the generated weights, on the first 8 samples."""
        delta1, delta2 = predictor.hyper.modulation(e[:8]).materialise()
        return delta1.flatten(1).norm(dim=-1).mean(), delta2.flatten(1).norm(dim=-1).mean()


MODULATOR = HyperModulator()
