"""How the model runs on this machine: threads, batch size, allocator, and the runtime.

Every choice here was measured on 2 cores of an Intel Xeon (Sapphire/Emerald Rapids:
AVX-512, VNNI, avx512_bf16, no AMX exposed to the VM) with torch 2.14, images/second of
the ViT-B-32 image tower on ready tensors (scripts/bench_embed --settings; the figures are
in docs/benchmarks.md):

- threads: one per physical core (torch's default on bare metal, but not in a container
  whose CPU quota is smaller than the host's cores: oversubscribed OpenMP threads stall);
  1 thread instead of 2 halves the speed;
- batch size on CPU: 16, 32 and 64 are within 5 % of each other, 1 is about half as
  fast: 32; on CUDA 128 (see the GPU below);
- inference_mode vs no_grad: equal; channels_last: no gain (only the patch embedding is a
  convolution): both left out;
- torch.compile with the weights frozen into the graph: 3 to 9 % more for float32, none
  for int8, for 12 to 22 s of compiling per batch shape (50 s in max-autotune mode),
  550 MB more memory (SigLIP2's 360 MB tower) and a C++ compiler on the server: left
  out, since int8, the default on CPU, gains far more;
- bfloat16 autocast: a third of the float32 speed on this CPU (no AMX: the products are
  emulated); where the CPU has AMX, see BF16_WINS_ON_AMX;
- int8 (models.quantize): 2.4 times float32 on ViT-B-32, 2.1 times on
  ViT-B-32-SigLIP2-256, within the fidelity bar (see INT8_MEASURED);
- float16 autocast on CUDA, measured on an H100 (docs/benchmarks.md, "Embedding on a
  GPU"): from batch 64 up 1.3 to 3.3 times float32's speed, vectors at worst cosine
  1.0000 (to four places) of float32's; at batch 32 no faster (launches, not products,
  take the time). Batch 128: the tower alone doubles again at 256, but the pipeline
  feeding it gives 300-400 pictures a second there, a twentieth of what the tower takes;
- glibc told to keep freed memory (keep_freed_memory): +15 % for float32, +17 to 30 %
  for int8, by sparing the page faults of tensors mapped afresh at every layer.

The runtime changes only the image tower (indexing); texts are always encoded in float32,
one query at a time, so query vectors are those of the reference model.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from models.runtimes import RUNTIMES, Runtime

# Where int8 is on by default on CPU: measured with scripts/bench_embed (random weights,
# 512 shape images) against float32. On top of this, every load checks the real weights
# (models.fidelity). Worst cosine / top-10 neighbour overlap / speed of the tower alone:
#   ViT-B-32               0.9997 / 0.946 / 2.4x
#   ViT-B-32-SigLIP2-256   0.9993 / 0.958 / 2.1x  (its attention-pooling head stays in
#                          float32: quantised, it alone drops the cosine to 0.974)
INT8_MEASURED = frozenset({"ViT-B-32", "ViT-B-32-SigLIP2-256"})

# Where bfloat16 autocast beats int8 on a CPU with AMX (bfloat16 matrix units): measured
# on 16 cores of a Xeon with AMX (docs/benchmarks.md, "Embedding on a CPU with AMX"),
# tower alone, batch 32, against float32 / int8:
#   ViT-B-32-SigLIP2-256   1.9x / 1.2x, worst cosine 1.0000, top-10 overlap 0.995
# ViT-B-32 is left out: its bfloat16 ran at half float32's speed there (int8: 1.8x).
BF16_WINS_ON_AMX = frozenset({"ViT-B-32-SigLIP2-256"})

CPU_BATCH_SIZE = 32
CUDA_BATCH_SIZE = 128

# glibc's mallopt parameters, and the values Regard gives them (see keep_freed_memory).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 512 << 20

SYSFS_CPUS = Path("/sys/devices/system/cpu")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


@dataclass(frozen=True)
class DeviceSettings:
    """What the encoder uses on a device: torch threads (CPU only) and the batch size."""

    device: torch.device
    threads: int | None
    batch_size: int


def device_settings(device: torch.device) -> DeviceSettings:
    if device.type == "cpu":
        return DeviceSettings(device, cpu_threads(), CPU_BATCH_SIZE)
    return DeviceSettings(device, None, CUDA_BATCH_SIZE)


def apply_threads(settings: DeviceSettings) -> None:
    """Set torch's intra-op threads, unless the user chose them with OMP_NUM_THREADS."""
    if settings.threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(settings.threads)


@cache
def keep_freed_memory() -> bool:
    """Let glibc serve blocks up to 32 MB from its heap and keep up to 512 MB of it free.

    By default glibc maps large blocks afresh and returns free memory at the top of its
    heap to the system; a model allocates and frees tensors of that size for every layer
    of every batch, and each new page then costs a page fault (dear in virtual machines).
    The price: up to 512 MB freed by the process stays in its resident memory. Once per
    process; False where the C library is not glibc (musl, macOS, Windows).
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    # Both together: setting either one stops glibc's own adjustment of the other.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def cpu_threads() -> int:
    """Physical cores this process may use, capped by the cgroup's CPU quota."""
    return _within_quota(_physical_cores(_allowed_cpus()))


def usable_cpus() -> int:
    """CPUs this process may use, hyper-threads counted, capped by the cgroup's CPU
    quota: for work that is not the model's (indexer.picture_processes)."""
    return _within_quota(len(_allowed_cpus()))


def _within_quota(count: int) -> int:
    quota = _cgroup_cpu_quota()
    return max(1, min(count, math.floor(quota)) if quota else count)


def resolve_runtime(
    requested: str, name: str, device: torch.device, flags: frozenset[str] | None = None
) -> Runtime:
    """The runtime to try first for `requested` on `device` (`flags`: the CPU's, read from
    the machine when None); ValueError when it cannot run there."""
    return runtimes_to_try(requested, name, device, flags)[0]


def runtimes_to_try(
    requested: str, name: str, device: torch.device, flags: frozenset[str] | None = None
) -> tuple[Runtime, ...]:
    """The runtimes to try in turn for `requested`, each checked at load, ending in
    float32 under "auto"; ValueError when an explicit one cannot run on `device`."""
    if requested not in RUNTIMES:
        raise ValueError(f"unknown runtime {requested!r}: one of {', '.join(RUNTIMES)}")
    if requested == "auto":
        return (*fast_runtimes(name, device, flags), "float32")
    if requested == "int8" and device.type != "cpu":
        raise ValueError("the int8 runtime runs on CPU only; on a GPU use float16")
    if requested == "int8" and not int8_available():
        raise ValueError("this torch build has no dynamic int8 quantisation engine")
    if requested == "float16" and device.type != "cuda":
        raise ValueError("the float16 runtime needs a CUDA device; on CPU use int8")
    return (requested,)  # type: ignore[return-value]


def fast_runtimes(
    name: str, device: torch.device, flags: frozenset[str] | None = None
) -> tuple[Runtime, ...]:
    """The runtimes measured faster than float32 for `name` on `device`, best first."""
    if device.type == "cuda":
        return ("float16",)
    if device.type != "cpu":
        return ()
    found: list[Runtime] = []
    if name in BF16_WINS_ON_AMX and "amx_bf16" in (cpu_flags() if flags is None else flags):
        found.append("bfloat16")
    if name in INT8_MEASURED and int8_available():
        found.append("int8")
    return tuple(found)


def int8_available() -> bool:
    """Dynamic int8 quantisation is deprecated in torch.ao: a future torch may drop it."""
    quantization = getattr(torch.ao, "quantization", None)
    engine = torch.backends.quantized.engine
    return hasattr(quantization, "quantize_dynamic") and engine not in ("none", None)


def autocast_dtype(runtime: Runtime) -> torch.dtype | None:
    return {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(runtime)


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux), e.g. to tell whether bfloat16 has hardware (AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _physical_cores(cpus: list[int], sysfs: Path = SYSFS_CPUS) -> int:
    """Hyper-threads share a core's vector units: count (package, core) pairs."""
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            package, core = "?", str(cpu)
        cores.add((package, core))
    return max(1, len(cores))


def _cgroup_cpu_quota(cpu_max: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs granted by a cgroup v2 quota ("200000 100000" is 2), None when unlimited."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)
