"""Shared by the benchmark scripts: the machine they ran on, their section of
docs/benchmarks.md (each script owns one `## Title` section and rewrites only it), and
the lock that keeps two benchmarks from running at once on the same cores."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Each section is written by the script it names, with the machine it ran on. Ratios\n"
    "come from measurements taken side by side in one run, so they hold on a noisy\n"
    "machine better than the absolute figures do.\n"
)


LOCK_FILE = Path("/tmp/regard-bench.lock")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    """The machine's memory, e.g. "24 GiB", or "unknown"."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kib / 1024 / 1024:.0f} GiB"
    return "unknown"


def machine() -> str:
    """This machine, as the foot of a docs/benchmarks.md section names it."""
    return machine_line(os.cpu_count(), cpu_model(), memory_gib(), platform.python_version())


def machine_line(cpus: object, cpu: str, ram: str, python: str) -> str:
    """A machine in the words of a section's foot (also for a run saved elsewhere)."""
    return f"{cpus} CPU cores ({cpu}), {ram} RAM, Python {python}"


@contextlib.contextmanager
def bench_lock(enabled: bool = True) -> Iterator[None]:
    """Hold LOCK_FILE for the block (waiting, and saying so, while another benchmark runs)."""
    if not enabled:
        yield
        return
    with LOCK_FILE.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {LOCK_FILE} (another benchmark is running)", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_section(
    title: str, body: str, ran_on: str | None = None, ran_where: str | None = None
) -> Path:
    """Replace (or add) `## title` in docs/benchmarks.md with `body`, dated `ran_on` and
    placed `ran_where` (the day and machine of the figures, for a saved run reported later,
    perhaps on another machine; default today, here)."""
    text = DOCS.read_text() if DOCS.exists() else HEADER
    day = ran_on or date.today().isoformat()
    section = f"## {title}\n\n{body.strip()}\n\n_Run on {day}: {ran_where or machine()}._\n"
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
    repo = DOCS.parent.parent
    venv_python = repo / ".venv" / "bin" / "python"
    if Path(sys.prefix).resolve() != (repo / ".venv").resolve() and venv_python.exists():
        os.execv(venv_python, [str(venv_python), *sys.argv])
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))


class FullContextTokens:
    """Token ids of the model's full context length, a stand-in for a tokenizer.

    SigLIP tokenizers pad every text to the context length, so the text tower does the
    same work for these as for a real query; the ids are drawn from the text's hash.
    """

    def __init__(self, context_length: int, vocab_size: int):
        self.context_length = context_length
        self.vocab_size = vocab_size

    def __call__(self, texts: list[str]):
        import torch

        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            generator = torch.Generator().manual_seed(seed)
            rows.append(
                torch.randint(1, self.vocab_size, (self.context_length,), generator=generator)
            )
        return torch.stack(rows)


@contextlib.contextmanager
def tokenizer_stand_in(say: Callable[[str], None] = print) -> Iterator[None]:
    """Within the block, Encoders whose tokenizer is not to be had offline get
    FullContextTokens instead of failing; `say` hears which tokenizer each one got."""
    import models.encoder
    from models.errors import ModelUnavailableError

    real = models.encoder.load_tokenizer

    def load_tokenizer(name, config, *args):
        try:
            tokenizer = real(name, config, *args)
            line = "tokenizer: the model's own"
        except ModelUnavailableError:
            text = config["text_cfg"]
            tokenizer = FullContextTokens(text["context_length"], text["vocab_size"])
            line = (
                f"tokenizer: stand-in, {text['context_length']} token ids per text "
                "(the real one is not available offline)"
            )
        say(line)
        return tokenizer

    models.encoder.load_tokenizer = load_tokenizer
    try:
        yield
    finally:
        models.encoder.load_tokenizer = real


@contextlib.contextmanager
def random_init(seed: int) -> Iterator[None]:
    """Within the block, Encoders with "random" weights draw them from `seed` instead of
    models.encoder.RANDOM_SEED (how well int8 keeps to float32 depends on the weights)."""
    import models.encoder

    default = models.encoder.RANDOM_SEED
    models.encoder.RANDOM_SEED = seed
    try:
        yield
    finally:
        models.encoder.RANDOM_SEED = default


def ask_one_by_one(
    index, queries, k: int, modality: str = "image"
) -> tuple[list[set[int]], list[float]]:
    """Each query's k best keys from a VectorIndex, asked one at a time as the service asks
    them, and the seconds each answer took."""
    found: list[set[int]] = []
    seconds: list[float] = []
    for query in queries:
        started = time.perf_counter()
        neighbours = index.search(query, k, modality)[0]
        seconds.append(time.perf_counter() - started)
        found.append({n.key for n in neighbours})
    return found, seconds


def hits(found: list[set[int]], truth) -> list[int]:
    """How many of each query's exact answers (a row of keys) were found."""
    return [len(got & set(row.tolist())) for got, row in zip(found, truth, strict=True)]
