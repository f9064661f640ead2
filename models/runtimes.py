"""The names of the runtimes an image tower can run in (no torch: the CLI lists them)."""

from __future__ import annotations

from typing import Literal

Runtime = Literal["float32", "int8", "float16", "bfloat16"]
RUNTIMES: tuple[str, ...] = ("auto", "float32", "int8", "float16", "bfloat16")
