"""The wheel ships the package with its profiles: built with ``pip wheel`` and installed into a fresh virtual
environment, ``jepa-tui profiles`` lists the shipped profiles from the installed copy."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_profiles_and_finds_them_installed(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("jepa_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (ROOT / "profiles").glob("*.toml"))
    assert sorted(Path(n).name for n in names if n.startswith("jepa_tui/profiles/") and n.endswith(".toml")) \
        == shipped
    assert "jepa_tui/runs/directory.py" in names and "jepa_tui/config/schema.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The dependencies come from this environment (no download); the package itself only from the wheel.
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    where = subprocess.run([venv / "bin" / "python", "-c", "import jepa_tui; print(jepa_tui.__file__)"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(site))
    listed = subprocess.run([venv / "bin" / "jepa-tui", "profiles"], cwd=tmp_path, check=True, capture_output=True,
                            text=True).stdout
    assert [line.split()[0] for line in listed.splitlines()] == [Path(n).stem for n in shipped]
