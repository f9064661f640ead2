"""Shared by the benchmark scripts: the machine they ran on, and their section of
docs/benchmarks.md (each script owns one `## Title` section and rewrites only it)."""

from __future__ import annotations

import os
import platform
import re
from datetime import date
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Each section is written by the script it names, with the machine it ran on. Ratios\n"
    "come from measurements taken side by side in one run, so they hold on a noisy\n"
    "machine better than the absolute figures do.\n"
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = "RAM unknown"
    return f"{os.cpu_count()} CPU cores ({cpu}), {memory}, Python {platform.python_version()}"


def write_section(title: str, body: str) -> Path:
    """Replace (or add) `## title` in docs/benchmarks.md with `body`, dated."""
    text = DOCS.read_text() if DOCS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n\n_Run on {date.today().isoformat()}: {machine()}._\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)
    return DOCS


def use_project_python() -> None:
    """Re-run the calling script with the project's .venv when started by a bare python3,
    and make the project's packages importable."""
    import sys

    repo = DOCS.parent.parent
    venv_python = repo / ".venv" / "bin" / "python"
    if Path(sys.prefix).resolve() != (repo / ".venv").resolve() and venv_python.exists():
        os.execv(venv_python, [str(venv_python), *sys.argv])
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
