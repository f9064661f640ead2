"""How the encoder runs: preprocessing, the int8 runtime and its checks, device settings.

Fast (a few seconds on 2 cores) and without timed assertions: speed is measured by
scripts/bench_embed, not here.
"""

from __future__ import annotations

import logging
import platform
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
import torch
from open_clip.transform import image_transform
from PIL import Image
from torch import nn

import models.encoder
import models.runtime
from indexer.store import Store
from models import TEST_MODEL, Encoder, ModelError, RuntimeRefusedError, UnknownModelError
from models.encoder_thread import EncoderThread
from models.fidelity import (
    MIN_COSINE,
    MIN_NEIGHBOUR_OVERLAP,
    cosines,
    neighbour_overlap,
    probe_batch,
    probe_pictures,
)
from models.preprocess import Preprocess, stack
from models.quantize import NoBlocksError, SelfAttention, block_stacks, quantized_copy
from models.runtime import (
    CPU_BATCH_SIZE,
    CUDA_BATCH_SIZE,
    _cgroup_cpu_quota,
    _physical_cores,
    apply_threads,
    device_settings,
    int8_available,
    keep_freed_memory,
    resolve_runtime,
    runtimes_to_try,
)
from models.shapes import COLOURS, SHAPES, collection, english_caption, french_caption, render
from service.cli import main as regard
from tests.iiif_server import IIIFTestServer

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
NO_AMX = frozenset({"avx2", "avx512f", "avx512_bf16"})  # bfloat16 instructions, no AMX
AMX = NO_AMX | {"amx_tile", "amx_bf16", "amx_int8"}
needs_int8 = pytest.mark.skipif(not int8_available(), reason="no int8 engine in this torch")


@pytest.fixture(scope="module")
def float32() -> Encoder:
    return Encoder(TEST_MODEL, device="cpu")


@pytest.fixture(scope="module")
def int8() -> Encoder:
    return Encoder(TEST_MODEL, device="cpu", runtime="int8")


def shapes(count: int, size: int = 96) -> list[Image.Image]:
    return [render(spec, size) for spec in collection(per_pair=8, seed=700_000)[:count]]


def assorted_pictures() -> list[Image.Image]:
    """Sizes and modes the indexer meets: square, portrait, landscape, tiny, odd modes, and
    pictures already of a model's input size (whose crop and conversion are skipped)."""
    base = render(collection(per_pair=1, seed=3)[5], 400)
    sizes = [(224, 224), (224, 300), (301, 224), (97, 61), (640, 480), (257, 1000)]
    sizes += [(256, 256), (64, 64), (160, 192)]
    pictures = [base.resize(size) for size in sizes]
    pictures += [base.convert(mode) for mode in ("L", "RGBA", "P", "CMYK", "I;16")]
    return pictures


# --- preprocessing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "resize_mode", "mean", "std"),
    [
        (224, "shortest", open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD),
        (256, "squash", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # SigLIP's
        (64, "longest", (0.5, 0.4, 0.3), (0.2, 0.3, 0.25)),
        ((192, 160), "shortest", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ],
)
def test_preprocessing_gives_open_clips_tensors(
    size: int | tuple[int, int], resize_mode: str, mean: tuple, std: tuple
) -> None:
    transform = image_transform(size, is_train=False, mean=mean, std=std, resize_mode=resize_mode)
    fast = Preprocess(transform)
    assert fast.uses_table
    for picture in assorted_pictures():
        expected = transform(picture)
        got = fast(picture)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_encoder_preprocess_matches_open_clip(float32: Encoder) -> None:
    _, _, transform = open_clip.create_model_and_transforms(TEST_MODEL)
    for picture in assorted_pictures():
        torch.testing.assert_close(
            float32.preprocess(picture), transform(picture), atol=1e-6, rtol=0
        )


def test_unknown_transforms_are_used_as_they_are() -> None:
    def transform(picture: Image.Image) -> torch.Tensor:
        return torch.ones(3, 8, 8)

    fast = Preprocess(transform)
    assert not fast.uses_table
    assert torch.equal(fast(render(collection(per_pair=1, seed=1)[0], 32)), torch.ones(3, 8, 8))


def test_stack_is_torch_stack() -> None:
    tensors = [torch.randn(3, 16, 16) for _ in range(5)]
    assert torch.equal(stack(tensors), torch.stack(tensors))
    assert stack([], 16).shape == (0, 3, 16, 16)


def test_embed_tensors_takes_a_list(float32: Encoder) -> None:
    tensors = [float32.preprocess(picture) for picture in shapes(6)]
    np.testing.assert_allclose(
        float32.embed_tensors(tensors), float32.embed_tensors(torch.stack(tensors)), atol=1e-6
    )
    assert float32.embed_tensors([]).shape == (0, float32.dim)


# --- the int8 image tower --------------------------------------------------------------------


def test_self_attention_computes_what_multihead_attention_does() -> None:
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    replaced = SelfAttention(attention).eval()
    x = torch.randn(3, 7, 32)
    causal = torch.full((7, 7), float("-inf")).triu(1)  # open_clip's text mask
    masked = torch.rand(7, 7) > 0.7
    masked.fill_diagonal_(False)
    with torch.inference_mode():
        for mask in (None, causal, masked):
            expected = attention(x, x, x, need_weights=False, attn_mask=mask)[0]
            torch.testing.assert_close(replaced(x, x, x, attn_mask=mask)[0], expected)


def test_only_the_transformer_blocks_are_quantised(float32: Encoder) -> None:
    tower = float32._model.visual
    (blocks,) = block_stacks(tower)
    assert blocks is tower.transformer.resblocks
    quantised = quantized_copy(tower)
    layers = list(quantised.transformer.resblocks.modules())
    assert not any(isinstance(m, nn.MultiheadAttention) for m in layers)
    assert not any(type(m) is nn.Linear for m in layers)  # all replaced by int8 ones
    assert isinstance(tower.transformer.resblocks[0].attn, nn.MultiheadAttention)  # a copy


def test_a_tower_without_blocks_cannot_be_quantised() -> None:
    with pytest.raises(NoBlocksError):
        quantized_copy(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)))


class Tower(nn.Module):
    """The least a tower needs to be quantised: a stack of two or more linear blocks."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Linear(width, width)) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


@needs_int8
def test_int8_keeps_every_channel_where_a_few_weights_are_much_larger() -> None:
    # A layer may have output channels with far larger weights than the rest (some of
    # SigLIP2's random initialisations do): one scale for the whole layer would leave the
    # other channels only a few levels of int8.
    torch.manual_seed(0)
    tower = Tower(width=64, depth=2).eval()
    with torch.no_grad():
        tower.blocks[-1][0].weight[0] *= 30
    x = torch.randn(256, 64)
    with torch.inference_mode():
        reference, fast = tower(x).numpy(), quantized_copy(tower)(x).numpy()
    ordinary = slice(1, None)  # one scale per layer: 0.991 here
    assert cosines(reference[:, ordinary], fast[:, ordinary]).min() >= 0.999


@needs_int8
def test_int8_vectors_pass_the_fidelity_bar(float32: Encoder, int8: Encoder) -> None:
    pictures = shapes(128, size=64)
    reference, fast = float32.embed_images(pictures), int8.embed_images(pictures)
    assert cosines(reference, fast).min() >= MIN_COSINE
    assert neighbour_overlap(reference, fast, k=10) >= MIN_NEIGHBOUR_OVERLAP
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


@needs_int8
def test_int8_keeps_text_to_image_search(float32: Encoder, int8: Encoder) -> None:
    # USERS.md: quantisation can spoil text-to-image search while images stay close to
    # each other. With trained weights (the test model), each caption in English and
    # French must find as many right pictures among its 10 best in int8 as in float32.
    per_pair = 8  # pictures of each (shape, colour): all of them belong in its 10 best
    specs = collection(per_pair=per_pair, seed=710_000)
    pictures = [render(spec, 64) for spec in specs]
    queries = [(shape, colour) for shape in SHAPES for colour in COLOURS]
    texts = float32.embed_texts(
        [english_caption(*q) for q in queries] + [french_caption(*q) for q in queries]
    )
    wanted = np.array([[(spec.shape, spec.colour) == q for spec in specs] for q in queries * 2])

    def right_in_top10(vectors: np.ndarray) -> np.ndarray:
        best = np.argsort(-(texts @ vectors.T), axis=1)[:, :10]
        return np.take_along_axis(wanted, best, axis=1).sum(axis=1)

    reference = right_in_top10(float32.embed_images(pictures))
    fast = right_in_top10(int8.embed_images(pictures))
    # the model does find them, so that the comparison means something
    assert reference.mean() >= per_pair - 0.5
    np.testing.assert_array_equal(fast, reference)


@needs_int8
def test_the_runtime_is_not_part_of_the_fingerprint(float32: Encoder, int8: Encoder) -> None:
    # Its vectors stay within the bar of float32's, so a store may hold both.
    assert int8.runtime == "int8" and float32.runtime == "float32"
    assert int8.runtime_cosine is not None and int8.runtime_cosine >= 0.995
    assert int8.fingerprint == float32.fingerprint
    texts = ["a red circle", "un carré bleu"]  # the text tower is never quantised
    np.testing.assert_array_equal(int8.embed_texts(texts), float32.embed_texts(texts))


@needs_int8
def test_auto_is_int8_for_a_measured_architecture() -> None:
    encoder = Encoder("ViT-B-32", "random", device="cpu")
    assert encoder.runtime == "int8"
    assert encoder.runtime_cosine is not None and encoder.runtime_cosine >= 0.995
    assert encoder.settings["runtime"] == "int8"


@needs_int8
def test_a_failed_check_refuses_an_explicit_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.encoder, "LOAD_CHECK_MIN_COSINE", 1.01)  # nothing passes
    with pytest.raises(RuntimeRefusedError, match="cannot run in int8") as refused:
        Encoder(TEST_MODEL, device="cpu", runtime="int8")
    assert refused.value.runtime == "int8"
    worst = refused.value.worst_cosine
    assert worst is not None and 0.9 < worst < 1.01
    assert f"worst cosine {worst:.4f}" in str(refused.value)


@needs_int8
def test_a_failed_check_falls_back_to_float32_under_auto(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, float32: Encoder
) -> None:
    monkeypatch.setattr(models.runtime, "INT8_MEASURED", frozenset({TEST_MODEL}))
    monkeypatch.setattr(models.encoder, "LOAD_CHECK_MIN_COSINE", 1.01)
    with caplog.at_level(logging.WARNING, logger="models.encoder"):
        encoder = Encoder(TEST_MODEL, device="cpu")
    assert encoder.runtime == "float32" and encoder.runtime_cosine is None
    assert "Using float32" in caplog.text
    pictures = shapes(4)
    np.testing.assert_allclose(
        encoder.embed_images(pictures), float32.embed_images(pictures), atol=1e-6
    )


def test_probe_pictures_are_varied_and_deterministic() -> None:
    first, again = probe_pictures(), probe_pictures()
    assert len(first) == 8
    assert len({picture.size for picture in first}) > 1
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again, strict=True)
    )


# --- choosing the runtime and the settings per device -----------------------------------------


@pytest.mark.parametrize(
    ("requested", "name", "device", "flags", "expected"),
    [
        ("auto", "ViT-B-32", CPU, NO_AMX, "int8"),
        ("auto", "ViT-B-32", CPU, AMX, "int8"),  # its bfloat16 was slower than float32
        ("auto", "ViT-B-32-SigLIP2-256", CPU, NO_AMX, "int8"),
        ("auto", "ViT-B-32-SigLIP2-256", CPU, AMX, "bfloat16"),
        ("auto", TEST_MODEL, CPU, AMX, "float32"),  # not measured: float32
        ("auto", "ViT-B-32", CUDA, AMX, "float16"),
        ("float32", "ViT-B-32", CPU, NO_AMX, "float32"),
        ("bfloat16", "ViT-B-32", CPU, NO_AMX, "bfloat16"),
        ("int8", TEST_MODEL, CPU, AMX, "int8"),
    ],
)
def test_runtime_choice(
    requested: str, name: str, device: torch.device, flags: frozenset[str], expected: str
) -> None:
    if expected == "int8" and not int8_available():
        pytest.skip("no int8 engine in this torch")
    assert resolve_runtime(requested, name, device, flags) == expected


@needs_int8
def test_auto_tries_each_measured_runtime_then_float32() -> None:
    siglip2 = "ViT-B-32-SigLIP2-256"
    assert runtimes_to_try("auto", siglip2, CPU, AMX) == ("bfloat16", "int8", "float32")
    assert runtimes_to_try("auto", siglip2, CPU, NO_AMX) == ("int8", "float32")
    assert runtimes_to_try("bfloat16", siglip2, CPU, NO_AMX) == ("bfloat16",)


@needs_int8
def test_a_refused_runtime_passes_on_to_the_next_under_auto(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(models.runtime, "BF16_WINS_ON_AMX", frozenset({TEST_MODEL}))
    monkeypatch.setattr(models.runtime, "INT8_MEASURED", frozenset({TEST_MODEL}))
    monkeypatch.setattr(models.runtime, "cpu_flags", lambda: AMX)
    assert Encoder(TEST_MODEL, device="cpu").runtime == "bfloat16"  # passes its check
    monkeypatch.setattr(models.encoder, "LOAD_CHECK_MIN_COSINE", 1.01)  # nothing passes
    probed: list[int] = []

    def counted_probe_batch(preprocess: Any) -> torch.Tensor:
        probed.append(1)
        return probe_batch(preprocess)

    monkeypatch.setattr(models.encoder, "probe_batch", counted_probe_batch)
    with caplog.at_level(logging.WARNING, logger="models.encoder"):
        encoder = Encoder(TEST_MODEL, device="cpu")
    assert encoder.runtime == "float32"
    assert len(probed) == 1  # float32's probe vectors: made once for both checks
    refusals = [r.getMessage() for r in caplog.records]
    assert "cannot run in bfloat16" in refusals[0] and refusals[0].endswith("Trying int8.")
    assert "cannot run in int8" in refusals[1] and refusals[1].endswith("Using float32.")


@pytest.mark.parametrize(
    ("requested", "device", "message"),
    [
        ("int8", CUDA, "CPU only"),
        ("float16", CPU, "CUDA"),
        ("fp8", CPU, "unknown runtime"),
    ],
)
def test_runtimes_that_cannot_run_are_refused(
    requested: str, device: torch.device, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_runtime(requested, "ViT-B-32", device)
    if device.type == "cpu":
        with pytest.raises(ModelError, match=message):
            Encoder(TEST_MODEL, device="cpu", runtime=requested)


def test_settings_per_device() -> None:
    cpu = device_settings(CPU)
    assert cpu.batch_size == CPU_BATCH_SIZE and cpu.threads is not None and cpu.threads >= 1
    cuda = device_settings(CUDA)
    assert cuda.batch_size == CUDA_BATCH_SIZE and cuda.threads is None


def test_encoder_uses_the_cpu_settings(float32: Encoder) -> None:
    assert float32.batch_size == CPU_BATCH_SIZE
    assert float32.settings == {
        "device": "cpu",
        "runtime": "float32",
        "runtime_cosine": None,
        "threads": torch.get_num_threads(),
        "batch_size": CPU_BATCH_SIZE,
        "keeps_freed_memory": keep_freed_memory(),
    }
    assert Encoder(TEST_MODEL, device="cpu", batch_size=5).batch_size == 5


def test_keeping_freed_memory_is_set_once_where_glibc_is() -> None:
    applied = keep_freed_memory()
    assert applied == (platform.libc_ver()[0] == "glibc")
    assert keep_freed_memory() is applied  # once per process


def test_omp_num_threads_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        apply_threads(models.runtime.DeviceSettings(CPU, before + 3, 32))
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_physical_cores_count_hyperthreads_once(tmp_path: Path) -> None:
    # 4 logical CPUs: two cores with two hyper-threads each.
    for cpu, core in enumerate([0, 1, 0, 1]):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text(f"{core}\n")
    assert _physical_cores([0, 1, 2, 3], tmp_path) == 2
    assert _physical_cores([0, 2], tmp_path) == 1


@pytest.mark.parametrize(
    ("content", "expected"), [("max 100000", None), ("150000 100000", 1.5), (None, None)]
)
def test_cgroup_quota(tmp_path: Path, content: str | None, expected: float | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    if content is not None:
        cpu_max.write_text(content + "\n")
    assert _cgroup_cpu_quota(cpu_max) == expected


def test_usable_cpus_count_hyper_threads_within_the_cgroup_quota(monkeypatch) -> None:
    monkeypatch.setattr(models.runtime, "_allowed_cpus", lambda: list(range(16)))
    monkeypatch.setattr(models.runtime, "_cgroup_cpu_quota", lambda: None)
    assert models.runtime.usable_cpus() == 16
    monkeypatch.setattr(models.runtime, "_cgroup_cpu_quota", lambda: 4.5)  # a container's
    assert models.runtime.usable_cpus() == 4


# --- the runtime from the command line --------------------------------------------------------


@needs_int8
def test_regard_index_says_how_it_embeds_and_takes_a_runtime(
    tmp_path: Path,
    iiif_server: IIIFTestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, manifest = tmp_path / "store", iiif_server.url("v3/vam_ocean-liners.json")
    base = ["index", manifest, "--store", str(store), "--model", TEST_MODEL]
    assert regard([*base, "--runtime", "int8"]) == 0
    said = capsys.readouterr().out
    assert f"Embedding with {TEST_MODEL} on cpu: int8 runtime (checked against float32: " in said
    assert f"batches of {CPU_BATCH_SIZE}, {torch.get_num_threads()} threads." in said
    embedded = Store.open(store).stats()["items"]
    assert embedded > 0
    # It says which search index the store now has.
    vectors = "1 vector" if embedded == 1 else f"{embedded:,} vectors"
    assert f"index:  exact, {vectors}: every one is scanned" in said

    # The same store takes a run in another runtime: the vectors are the same model's.
    shapes = f"{iiif_server.base_url}/shapes/manifest.json?per_pair=1"
    monkeypatch.setenv("REGARD_INDEX_KIND", "ivf")
    assert regard([*base[:1], shapes, *base[2:], "--runtime", "float32", "--batch-size", "5"]) == 0
    said = capsys.readouterr().out
    assert "float32 runtime, batches of 5" in said and "checked" not in said
    assert Store.open(store).stats()["items"] > embedded
    # An IVF index says how many cells it measured each kind of query needs.
    assert "index:  IVF" in said and "measured on " in said and "text-like probes" in said


def test_an_unknown_runtime_is_refused_with_the_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        regard(["index", "x.json", "--store", str(tmp_path / "s"), "--runtime", "fast"])
    assert stopped.value.code == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_runtime_the_device_cannot_run_is_a_clear_error(
    tmp_path: Path, iiif_server: IIIFTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    manifest = iiif_server.url("v3/vam_ocean-liners.json")
    args = ["index", manifest, "--store", str(store), "--model", TEST_MODEL, "--device", "cpu"]
    assert regard([*args, "--runtime", "float16"]) == 1
    error = capsys.readouterr().err
    assert "float16 runtime needs a CUDA device; on CPU use int8" in error
    assert "Traceback" not in error
    assert not store.exists()  # nothing was made of a store that did not exist


class ThreadRecordingEncoder(Encoder):
    """The test model, noting the threads it is built and called on."""

    def __init__(self, seen: list[tuple[str, int]]) -> None:
        seen.append(("built", threading.get_ident()))
        self.seen = seen
        super().__init__(TEST_MODEL)

    def embed_texts(self, texts, batch_size=None):
        self.seen.append(("called", threading.get_ident()))
        return super().embed_texts(texts, batch_size)


def test_encoder_thread_keeps_the_model_on_one_thread_for_callers_on_many():
    seen: list[tuple[str, int]] = []
    encoder = EncoderThread(lambda: ThreadRecordingEncoder(seen))
    try:
        texts = ["red circle", "green triangle", "blue square", "cercle rouge"] * 4
        with ThreadPoolExecutor(max_workers=8) as callers:
            answers = list(callers.map(lambda text: encoder.embed_texts([text])[0], texts))
        together = encoder.embed_texts(texts)
    finally:
        encoder.close()
    # Built and called on the same thread, never on a caller's (torch's OpenMP teams
    # belong to the calling thread: see models.encoder_thread).
    threads = {thread for _, thread in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert [what for what, _ in seen].count("called") == len(texts) + 1
    assert np.allclose(np.stack(answers), together, atol=1e-5)
    assert encoder.fingerprint == encoder.encoder.fingerprint


def test_encoder_thread_runs_other_openmp_work_on_the_model_thread():
    seen: list[tuple[str, int]] = []
    encoder = EncoderThread(lambda: ThreadRecordingEncoder(seen))
    try:
        assert encoder.run(threading.get_ident) == seen[0][1]
        assert encoder.run(divmod, 7, 2) == (3, 1)
    finally:
        encoder.close()


def test_encoder_thread_passes_on_a_model_that_cannot_be_built():
    with pytest.raises(UnknownModelError, match="no-such-model"):
        EncoderThread(lambda: Encoder("no-such-model"))
