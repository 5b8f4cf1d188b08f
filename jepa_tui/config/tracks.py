"""The track registry: one record per track, read by the schema, the model, the trainer, the dashboard and the report.

A track is how experience reaches the predictor (paper §3.2-§3.4, §5.3): A none, B added to the hidden state, C
per-sample LoRA deltas, D FiLM, E a hypernetwork. Everything else about a track that the rest of the package needs
(its name, whether it has memory, the names and labels of its modulation statistics, its default learning rate and
boundary threshold κ, its dashboard key, colours and plot style) is here. Adding a track is an entry below plus, for
a new way of modulating the predictor, its module in :mod:`jepa_tui.model.modulators` (README, "Development").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UNMODULATED = ("none", "injection")  # modulator kinds that leave the predictor's weights and activations alone


@dataclass(frozen=True)
class Track:
    """One track.

    Attributes:
        letter: the track's name everywhere ("A" ...), ``train.track``.
        name: what the paper or the field calls it.
        modulator: how experience reaches the predictor, the name of its module in ``jepa_tui/model/modulators/``:
            "none" (Track A), "injection" (added to the hidden state), "lora", "film", "hypernetwork" (the
            predictor's weights or activations are modulated per sample), or a new kind's.
        modulation_stats: train-record fields of the two modulation norms and, where defined, their combination,
            e.g. ("lora_delta_norm_w1", "lora_delta_norm_w2", "lora_delta_norm"); () for tracks without.
        modulation_labels: the dashboard's labels of the two norms.
        lr: the default learning rate (``train.lr`` unset).
        kappa: the default boundary threshold κ (``memory.kappa`` unset), standard deviations.
        key: the dashboard key that switches to this track.
        color: the dashboard's colour (a Rich colour name).
        line, marker, hex_color, hatch: the report figures' line style, marker, colour (Okabe-Ito, colour-blind
            safe) and bar hatch, so that tracks are told apart in black and white too.
    """

    letter: str
    name: str
    modulator: str
    modulation_stats: tuple[str, ...] = ()
    modulation_labels: tuple[str, str] | None = None
    lr: float = 1e-3
    kappa: float = 1.5
    key: str = ""
    color: str = "white"
    line: str | tuple = "-"
    marker: str = "x"
    hex_color: str = "0.3"
    hatch: str | None = None

    def modulation_record(self, first: float, second: float) -> dict[str, float]:
        """The two modulation norms under this track's record names, with their combination √(a² + b²) where it has
        one (C: LoRA ΔW; D: FiLM γ and β; E: generated ΔW); empty for a track without."""
        names = self.modulation_stats
        values = (first, second, (first**2 + second**2) ** 0.5)[:len(names)]
        return dict(zip(names, values, strict=True))

    @property
    def memory(self) -> bool:
        """Whether the track has a boundary detector, an experience buffer, an encoder and an aggregator."""
        return self.modulator != "none"

    @property
    def modulated(self) -> bool:
        """Whether experience modulates the predictor's weights or activations (not only its hidden state)."""
        return self.modulator not in UNMODULATED


REGISTRY: dict[str, Track] = {t.letter: t for t in (
    Track("A", "vanilla JEPA", "none", key="1", color="blue", line="-", marker="o", hex_color="#0072B2"),
    # the paper's lr for Track B is 3e-4 and its κ 2.0 (spec §4, §3.5a)
    Track("B", "EI-JEPA", "injection", lr=3e-4, kappa=2.0, key="2", color="magenta", line="--", marker="s",
          hex_color="#CC79A7", hatch="//"),
    Track("C", "EPM-JEPA", "lora", ("lora_delta_norm_w1", "lora_delta_norm_w2", "lora_delta_norm"),
          ("LoRA ‖ΔW1‖", "LoRA ‖ΔW2‖"), key="3", color="green", line=":", marker="^", hex_color="#009E73",
          hatch=".."),
    Track("D", "FiLM", "film", ("film_gamma_norm", "film_beta_norm"), ("FiLM ‖γ‖", "FiLM ‖β‖"), key="4",
          color="yellow", line="-.", marker="D", hex_color="#E69F00", hatch="xx"),
    Track("E", "hypernetwork", "hypernetwork", ("hyper_delta_norm_w1", "hyper_delta_norm_w2", "hyper_delta_norm"),
          ("hyper ‖ΔW1‖", "hyper ‖ΔW2‖"), key="5", color="cyan", line=(0, (5, 1, 1, 1, 1, 1)), marker="v",
          hex_color="#56B4E9", hatch="\\\\"),
)}

TRACKS = tuple(REGISTRY)
TrackLetter = Literal[TRACKS]  # type: ignore[valid-type]  # ``train.track``'s allowed values, from the registry
MEMORY_TRACKS = tuple(t.letter for t in REGISTRY.values() if t.memory)
MODULATED_TRACKS = tuple(t.letter for t in REGISTRY.values() if t.modulated)
# every track's modulation statistics, first and second norm: what readers of any run's records look for
MODULATION_STATS = tuple(tuple(t.modulation_stats[i] for t in REGISTRY.values() if t.modulation_stats)
                         for i in (0, 1))


def track(letter: str) -> Track:
    """The registry's record of track ``letter``.

    Raises:
        KeyError: naming the known tracks, for an unknown letter.
    """
    try:
        return REGISTRY[letter]
    except KeyError:
        raise KeyError(f"unknown track {letter!r}; tracks: {', '.join(TRACKS)}") from None


def describe_tracks() -> str:
    """"A vanilla JEPA, B EI-JEPA, ...": the tracks for help texts."""
    return ", ".join(f"{t.letter} {t.name}" for t in REGISTRY.values())
