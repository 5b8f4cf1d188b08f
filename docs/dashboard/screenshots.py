"""Screenshots of the dashboard during a real training run, after a dozen interventions, at 80×24 and 160×45.

Trains a profile's Track C (default `track_c`, the paper's configuration, on the CPU) in the live dashboard,
driven by Textual's pilot: from step ``FIRST`` on, every ``GAP`` steps one key of a dozen (buffer and EMA freezes
and unfreezes, pauses, a dual freeze), then at step ``LAST`` saves the screen as SVG and renders it as PNG (CairoSVG:
``pip install cairosvg``; without it only the SVGs are written). A few minutes per size on 2 CPU cores.

    python docs/dashboard/screenshots.py [--profile track_c] [--out docs/dashboard]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from pathlib import Path

import torch

from jepa_tui.config import load_config
from jepa_tui.ui.app import Dashboard
from jepa_tui.ui.controllers import LiveController

KEYS = ["b", "e", "p", "p", "b", "f", "f", "e", "p", "p", "b", "b"]  # a dozen interventions
FIRST, GAP, LAST = 400, 80, 2000  # training steps: the first key, between two keys, the screenshot
SIZES = [(80, 24), (160, 45)]
SETTINGS = ["eval.every_steps=250"]  # denser D_shift curves than the profile's


async def until(pilot, condition, timeout: float = 120.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise TimeoutError("the run did not get there in time")


async def shoot(profile: str, size: tuple[int, int], runs_dir: Path, out: Path) -> Path:
    controller = LiveController(load_config(profile, SETTINGS), runs_dir, torch.device("cpu"))
    app = Dashboard(controller, sensor=None, redraw_hz=4)
    run = controller.runs["C"]
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: run.trainer.progress.step >= FIRST, timeout=900)
        for key in KEYS:
            target = run.trainer.progress.step + GAP
            await pilot.press(key)
            if controller.states["C"].status != "paused" and key != "p":
                await until(pilot, lambda t=target: run.trainer.progress.step >= t)
            else:
                await pilot.pause(0.5)
        await until(pilot, lambda: run.trainer.progress.step >= LAST, timeout=900)
        await pilot.pause(1.0)
        app.refresh_panels(force=True)
        await pilot.pause(0.5)
        path = out / f"dashboard_{size[0]}x{size[1]}.svg"
        path.write_text(app.export_screenshot(title=f"jepa-tui run --profile {profile} ({size[0]}×{size[1]})"),
                        encoding="utf-8")
        await pilot.press("q")
        await until(pilot, lambda: run.summary is not None)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="track_c")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as runs_dir:
        for size in SIZES:
            svg = asyncio.run(shoot(args.profile, size, Path(runs_dir), args.out))
            try:
                import cairosvg
            except ImportError:
                print(f"{svg} (no PNG: pip install cairosvg)")
                continue
            png = svg.with_suffix(".png")
            cairosvg.svg2png(bytestring=per_cell(svg.read_text(encoding="utf-8")).encode(), write_to=str(png),
                             output_width=size[0] * 12)
            print(f"{svg}\n{png}")


def per_cell(svg: str) -> str:
    """The SVG with every character of a text run placed on its own terminal cell (x = start + i · width): a
    renderer that ignores ``textLength`` (CairoSVG) otherwise lets a fallback font's wider glyphs (braille, when
    Fira Code is not installed) push the rest of a run out of its cells."""
    def place(match: re.Match) -> str:
        attrs, text = match.group(1), match.group(2)
        x, length = re.search(r' x="([\d.]+)"', attrs), re.search(r' textLength="([\d.]+)"', attrs)
        chars = re.findall(r"&#?\w+;|.", text)
        if not x or not length or len(chars) < 2:
            return match.group(0)
        start, width = float(x.group(1)), float(length.group(1)) / len(chars)
        xs = " ".join(f"{start + i * width:.1f}" for i in range(len(chars)))
        attrs = attrs.replace(x.group(0), f' x="{xs}"').replace(length.group(0), "")
        return f"<text{attrs}>{text}</text>"

    svg = svg.replace("font-family: Fira Code, monospace;", "font-family: Fira Code, DejaVu Sans Mono, monospace;")
    return re.sub(r"<text([^>]*)>([^<]*)</text>", place, svg)


if __name__ == "__main__":
    main()
