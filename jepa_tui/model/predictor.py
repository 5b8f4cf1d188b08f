"""The predictor P and how experience reaches it in each track (paper §3.2-§3.4; spec §3.1-§3.4).

The base predictor is the two-layer MLP ẑ = W2·σ(W1·z + b1) + b2 (d → H → d), rolled out autoregressively to
reach the horizons: ẑ_{t+1} = P(z_t), ẑ_{t+k} = P(ẑ_{t+k-1}) with the same experience vector at every step.

- Track A: no experience. A frozen W_inj-shaped dummy is carried for parameter-count comparability; unused.
- Track B (EI-JEPA): h = σ(W1 z + b1) + W_inj e, with W_inj bias-free so e = 0 gives Track A exactly
  (``model.injection_bias`` adds a bias).
- Track C (EPM-JEPA): per-sample LoRA deltas W_l' = W_l + B_l·diag(s_l)·A_l with s_l = G_l e (bias-free),
  computed in factorised form, W_l x + B_l (s_l ⊙ (A_l x)), never materialising per-sample matrices.
- Track D (FiLM, Perez et al. 2018; the paper's §5.3 future work): h' = (1 + γ(e)) ⊙ h + β(e) on the hidden layer
  (and, with ``memory.film_output``, on the output), γ and β linear maps of e initialised to zero.
- Track E (hypernetwork, Ha et al. 2017; §5.3): e generates full-rank per-sample ΔW1 (H × d) and ΔW2 (d × H) through a
  2-layer MLP, one chunk per hidden unit j: φ_j(e) = GELU(W_e e + W_c c_j + b) with c_j learned chunk embeddings, and
  (ΔW1[j, :], ΔW2[:, j]) = (U1, U2) (φ_j(e) − φ_j(0)) / hh. Like Track B's W_inj and Track C's generator G, the
  generated deltas vanish at e = 0 (an empty buffer gives Track A exactly), and the 1/hh keeps the generated weights'
  Adam steps the size of a directly learned weight's; without both, the deltas learned while the buffer is empty
  exploded when it filled (‖ΔW1‖_F 0.7 → 590, σ_z → 0; README, "Beyond the paper"). The last layer U starts at
  zero. Because it is linear, ΔW1 x and ΔW2 h are computed from φ without forming ΔW: (ΔW1 x)_j = (φ_j(e) − φ_j(0))
  · (U1ᵀ x) / hh and ΔW2 h = U2 Σ_j h_j (φ_j(e) − φ_j(0)) / hh, ``memory.hyper_block`` hidden units at a time (one
  block of all H by default, computed once per rollout).
  D and E start as a no-op, as LoRA's B = 0 does: e has no effect at step 0.

LeJEPA's options (seed 001), each off by default: ``model.predict_residual`` makes P output a change, ẑ = z + Δz;
``model.dynamics_prior`` adds a small MLP's default change, ẑ = z + Δz_prior(z) + Δz_residual; and
``model.horizon_mode = "conditioned"`` feeds the horizon k to P through a time embedding Linear(1 → 4)
concatenated to its input, so P predicts z_{t+k} in one application instead of k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from jepa_tui.config import ModelConfig
from jepa_tui.config.tracks import track as registered
from jepa_tui.model.encoder import ACTIVATIONS

TIME_EMBED = 4  # width of a conditioned predictor's time embedding Linear(1 → 4) (seed 001)


class LoRAFactors(nn.Module):
    """Shared low-rank bases A (r × in), B (out × r) and a bias-free generator G (r × exp_dim) for one layer.

    B starts at zero (standard LoRA), so ΔW = 0 at initialisation even with a non-empty buffer.
    """

    def __init__(self, in_dim: int, out_dim: int, rank: int, exp_dim: int, scale: float = 1.0,
                 a_init: str = "kaiming_uniform") -> None:
        super().__init__()
        self.A = nn.Parameter(torch.empty(rank, in_dim))
        self.B = nn.Parameter(torch.zeros(out_dim, rank))
        if a_init == "kaiming_uniform":
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        else:  # "gaussian", as in the LoRA paper: N(0, 1/r)
            nn.init.normal_(self.A, std=1.0 / math.sqrt(rank))
        self.generator = nn.Linear(exp_dim, rank, bias=False)
        self.scale = scale

    def scales(self, e: torch.Tensor) -> torch.Tensor:
        """(N, exp_dim) experience -> (N, r) per-sample scales s = scale · G e (``memory.lora_scale``, 1 by
        default, plays the role of LoRA's α/r)."""
        s = self.generator(e)
        return s if self.scale == 1.0 else s * self.scale

    def delta(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """ΔW x for per-sample ΔW = B·diag(s)·A: (N, in), (N, r) -> (N, out)."""
        return F.linear(s * F.linear(x, self.A), self.B)

    def delta_frobenius(self, s: torch.Tensor) -> torch.Tensor:
        """‖B·diag(s)·A‖_F per sample, (N, r) -> (N,), via sᵀ((BᵀB) ⊙ (AAᵀ))s without building ΔW."""
        gram = (self.B.T @ self.B) * (self.A @ self.A.T)
        return torch.einsum("ni,ij,nj->n", s, gram, s).clamp_min(0.0).sqrt()

    def materialise(self, s: torch.Tensor) -> torch.Tensor:
        """Per-sample ΔW, (N, r) -> (N, out, in). For tests and analysis only."""
        return torch.einsum("or,nr,ri->noi", self.B, s, self.A)


@dataclass
class LoRAModulation:
    """Track C's modulation for one rollout: per-sample scales and the stacked weights of both layers.

    ``w1 = [W1 | B1]`` (H × (d + r)) so that W1' z = w1 · [z ; s1 ⊙ (A1 z)], and ``w2 = [W2 ; A2]`` ((d + r) × H)
    so that one product w2 · h yields both W2 h and A2 h, then W2' h = W2 h + B2 (s2 ⊙ A2 h). Built once per rollout.
    """

    s1: torch.Tensor  # (N, r)
    s2: torch.Tensor  # (N, r)
    w1: torch.Tensor
    w2: torch.Tensor


@dataclass
class FilmModulation:
    """Track D's modulation for one rollout: γ, β (N, H) of the hidden layer, and of the output (N, d) or None."""

    gamma: torch.Tensor
    beta: torch.Tensor
    gamma_out: torch.Tensor | None = None
    beta_out: torch.Tensor | None = None


class FiLM(nn.Module):
    """γ(e), β(e) = Linear(d_e → H) each, zero-initialised (Perez et al. 2018), optionally also for the output.

    Bias-free by default (``memory.film_bias``), so that e = 0 (an empty buffer) gives Track A exactly at any
    weights, as B's injection and C's and E's generators do; with biases D learns an experience-independent
    modulation the memory cannot switch off.
    """

    def __init__(self, exp_dim: int, hidden: int, latent: int, output: bool, bias: bool = False) -> None:
        super().__init__()
        self.gamma, self.beta = nn.Linear(exp_dim, hidden, bias=bias), nn.Linear(exp_dim, hidden, bias=bias)
        self.gamma_out = nn.Linear(exp_dim, latent, bias=bias) if output else None
        self.beta_out = nn.Linear(exp_dim, latent, bias=bias) if output else None
        for layer in (self.gamma, self.beta, self.gamma_out, self.beta_out):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def modulation(self, e: torch.Tensor) -> FilmModulation:
        """(N, d_e) -> the per-sample γ, β."""
        if self.gamma_out is None or self.beta_out is None:
            return FilmModulation(self.gamma(e), self.beta(e))
        return FilmModulation(self.gamma(e), self.beta(e), self.gamma_out(e), self.beta_out(e))


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
    and runs after every product that read φ (they read its output).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, c: torch.Tensor, phi0: torch.Tensor, tape: PhiGradient | None = None
                ) -> torch.Tensor:
        pre = a[:, None, :] + c[None]
        ctx.save_for_backward(pre)
        ctx.tape = tape
        ctx.dtypes = (a.dtype, c.dtype, phi0.dtype)
        ctx.set_materialize_grads(False)
        return F.gelu(pre) - phi0[None]

    @staticmethod
    def backward(ctx, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        (pre,) = ctx.saved_tensors
        summed = ctx.tape.take() if ctx.tape is not None else None
        if grad is not None:
            summed = grad if summed is None else summed + grad
        if summed is None:
            return None, None, None, None
        grad_pre = torch.ops.aten.gelu_backward(summed.to(pre.dtype), pre)
        grad_a, grad_c, grad_phi0 = grad_pre.sum(1), grad_pre.sum(0), -summed.sum(0)
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


Modulation = LoRAModulation | FilmModulation | HyperModulation


class Predictor(nn.Module):
    """The predictor of one track; see the module docstring.

    Args:
        cfg: model configuration (latent_dim d, hidden_dim H, activation, horizons).
        track: "A" … "E".
        exp_dim: experience vector size d_e (memory.exp_dim).
        lora_rank, lora_scale, lora_a_init: Track C's LoRA (rank r, scale, init of A).
        film_output, film_bias: Track D also modulates the output layer; its γ and β maps have biases.
        hyper_hidden, hyper_chunk_dim, hyper_block: Track E's hypernetwork (hidden width, chunk embedding width,
            hidden units generated per block).
    """

    def __init__(self, cfg: ModelConfig, track: str, exp_dim: int, lora_rank: int, lora_scale: float = 1.0,
                 lora_a_init: str = "kaiming_uniform", film_output: bool = False, hyper_hidden: int = 32,
                 hyper_chunk_dim: int = 16, hyper_block: int = 1024, film_bias: bool = False) -> None:
        super().__init__()
        self.track = track
        self.modulator = registered(track).modulator
        self.horizons = tuple(sorted(cfg.horizons))
        self.conditioned = cfg.horizon_mode == "conditioned"
        self.residual = cfg.predict_residual or cfg.dynamics_prior
        in_dim = cfg.latent_dim + (TIME_EMBED if self.conditioned else 0)
        self.w1 = nn.Linear(in_dim, cfg.hidden_dim)
        self.act = ACTIVATIONS[cfg.predictor_activation]()
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.time: nn.Linear | None = nn.Linear(1, TIME_EMBED) if self.conditioned else None
        self.prior: nn.Sequential | None = None
        if cfg.dynamics_prior:
            self.prior = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.prior_hidden), nn.GELU(),
                                       nn.Linear(cfg.prior_hidden, cfg.latent_dim))
        self.inj: nn.Linear | None = None
        self.lora1: LoRAFactors | None = None
        self.lora2: LoRAFactors | None = None
        self.film: FiLM | None = None
        self.hyper: HyperNetwork | None = None
        if self.modulator == "film":
            self.film = FiLM(exp_dim, cfg.hidden_dim, cfg.latent_dim, film_output, film_bias)
        if self.modulator == "hypernetwork":
            self.hyper = HyperNetwork(exp_dim, in_dim, cfg.hidden_dim, cfg.latent_dim, hyper_hidden, hyper_chunk_dim,
                                      hyper_block)
        if self.modulator in ("none", "injection"):
            self.inj = nn.Linear(exp_dim, cfg.hidden_dim, bias=cfg.injection_bias)
            self.inj.requires_grad_(self.modulator == "injection")  # Track A carries it frozen, never uses its output
        if self.modulator == "lora":
            self.lora1 = LoRAFactors(in_dim, cfg.hidden_dim, lora_rank, exp_dim, lora_scale, lora_a_init)
            self.lora2 = LoRAFactors(cfg.hidden_dim, cfg.latent_dim, lora_rank, exp_dim, lora_scale, lora_a_init)

    def step(self, z: torch.Tensor, e: torch.Tensor | None = None, lora: Modulation | None = None,
             k: float | None = None) -> torch.Tensor:
        """One application of P: (N, d) -> (N, d).

        ``e`` (N, d_e) is used by Track B; ``lora`` (from :meth:`modulate`) by Tracks C, D and E. Passing neither
        gives the base predictor (no injection, no modulation), as the boundary detector needs. ``k`` is the horizon
        a conditioned predictor predicts (required then, ignored otherwise). With residual prediction the output is
        z plus the predicted change (plus the dynamics prior's).
        """
        x = z if self.time is None else torch.cat([z, self.time(z.new_full((z.shape[0], 1), float(k)))], dim=-1)
        if isinstance(lora, LoRAModulation) and self.lora1 is not None and self.lora2 is not None:
            low_rank = lora.s1 * F.linear(x, self.lora1.A)  # (N, r)
            h = self.act(F.linear(torch.cat([x, low_rank], dim=-1), lora.w1, self.w1.bias))
            both = F.linear(h, lora.w2)  # (N, d + r): W2 h, then A2 h
            d = self.w2.out_features
            out = both[:, :d] + self.w2.bias + F.linear(lora.s2 * both[:, d:], self.lora2.B)
        elif isinstance(lora, FilmModulation):
            h = (1 + lora.gamma) * self.act(self.w1(x)) + lora.beta
            out = self.w2(h)
            if lora.gamma_out is not None and lora.beta_out is not None:
                out = (1 + lora.gamma_out) * out + lora.beta_out
        elif isinstance(lora, HyperModulation):
            h = self.act(self.w1(x) + lora.delta1(x))
            out = self.w2(h) + lora.delta2(h)
        else:
            h = self.act(self.w1(x))
            if e is not None and self.modulator == "injection" and self.inj is not None:
                h = h + self.inj(e)
            out = self.w2(h)
        if not self.residual:
            return out
        return z + out if self.prior is None else z + self.prior(z) + out

    def lora_scales(self, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Track C's per-sample scales (s1, s2), each (N, r), from e; None for other tracks or no experience."""
        if e is None or self.lora1 is None or self.lora2 is None:
            return None
        return self.lora1.scales(e), self.lora2.scales(e)

    def modulation(self, scales: tuple[torch.Tensor, torch.Tensor] | None) -> LoRAModulation | None:
        """The :class:`LoRAModulation` for given scales, or None."""
        if scales is None or self.lora1 is None or self.lora2 is None:
            return None
        return LoRAModulation(scales[0], scales[1], torch.cat([self.w1.weight, self.lora1.B], dim=1),
                              torch.cat([self.w2.weight, self.lora2.A], dim=0))

    def modulate(self, e: torch.Tensor | None, scales: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> Modulation | None:
        """The per-rollout modulation of Tracks C (LoRA; from ``scales`` when given), D (FiLM) and E
        (hypernetwork) from experience e (N, d_e); None for Tracks A and B or no experience."""
        if e is None:
            return None
        if self.film is not None:
            return self.film.modulation(e)
        if self.hyper is not None:
            return self.hyper.modulation(e)
        return self.modulation(scales if scales is not None else self.lora_scales(e))

    def rollout(self, z: torch.Tensor, e: torch.Tensor | None = None,
                scales: tuple[torch.Tensor, torch.Tensor] | None = None,
                horizons: tuple[int, ...] | None = None) -> torch.Tensor:
        """Predictions at every horizon: (N, d) -> (N, len(horizons), d), horizons ascending (the model's unless
        given). Rolled out autoregressively, P applied k times for z_{t+k}; a conditioned predictor instead
        predicts each horizon directly. Track C's scales are derived from ``e`` unless given.
        """
        horizons = tuple(sorted(horizons or self.horizons))
        lora = self.modulate(e, scales)
        if self.conditioned:
            return torch.stack([self.step(z, e, lora, k) for k in horizons], dim=1)
        outputs, current = [], z
        for k in range(1, horizons[-1] + 1):
            current = self.step(current, e, lora)
            if k in horizons:
                outputs.append(current)
        return torch.stack(outputs, dim=1)
