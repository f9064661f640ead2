"""The encoder: one open_clip model that turns images and texts into unit vectors.

encoder = Encoder("regard-test")                      # the tiny model shipped for tests
encoder = Encoder("ViT-B-32-SigLIP2-256", "webli")    # hub tag, cached after first use
encoder = Encoder("ViT-B-32-SigLIP2-256", "/srv/models/siglip2/")  # air-gapped copy
vectors = encoder.embed_texts(["fauteuil en fer forgé"])  # (1, dim) float32, unit rows

The image tower runs in the fastest runtime that stays within the fidelity bar of float32
(models.runtime: int8 on CPU for the measured architectures, bfloat16 for SigLIP2 where
the CPU has AMX, float16 on CUDA), checked on probe pictures at every load. Its vectors
are interchangeable with float32 ones (cosine above 0.995), so the runtime is not part of
the fingerprint: a store indexed on a GPU in float16 is searched on a CPU, and a store
indexed in float32 is extended in int8.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal

import numpy as np
import open_clip
import torch
from PIL import Image

from models.checkpoints import RANDOM, ResolvedWeights, resolve_weights
from models.errors import ModelError, RuntimeRefusedError, UnknownPretrainedError
from models.fidelity import LOAD_CHECK_MIN_COSINE, cosines, probe_batch
from models.fingerprint import Fingerprint
from models.hub import HubAccess
from models.preprocess import Preprocess, stack
from models.quantize import NoBlocksError, quantized_copy
from models.registry import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    TEST_MODEL,
    default_pretrained,
    model_config,
)
from models.runtime import (
    Runtime,
    apply_threads,
    autocast_dtype,
    device_settings,
    keep_freed_memory,
    runtimes_to_try,
)
from models.text_side import load_tokenizer, local_text_tower

__all__ = ["DEFAULT_MODEL", "DEFAULT_PRETRAINED", "TEST_MODEL", "Encoder"]

Scoring = Literal["sigmoid", "softmax"]

log = logging.getLogger(__name__)

# Random weights are seeded so that "random" always names the same weights (per torch version).
RANDOM_SEED = 0


class Encoder:
    """An open_clip model in eval mode, with its preprocessing and tokenizer.

    `pretrained` is an open_clip tag, a local checkpoint file or folder, or "random"
    (only ever when asked for). When None, Regard's choice for that model is used: the
    shipped checkpoint for `regard-test`, "webli" for the default model.

    `runtime` is how the image tower runs: "auto" (the measured best for this model and
    device, else float32), "float32", "int8" (CPU), "float16" (CUDA) or "bfloat16". A
    fast runtime is checked against float32 at load: "auto" falls back to the next one
    measured (bfloat16, then int8, on a CPU with AMX) and last to float32 when it does not
    pass, an explicit one raises ModelError.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        pretrained: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int | None = None,
        runtime: str = "auto",
    ) -> None:
        config = model_config(name)
        pretrained = _pretrained_or_default(name, pretrained)
        hub = HubAccess(cache_dir)
        weights = resolve_weights(name, pretrained, hub)
        self._tokenize = load_tokenizer(name, config, weights.tokenizer_dir, hub)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            candidates = runtimes_to_try(runtime, name, self.device)
        except ValueError as error:
            raise ModelError(f"Model {name!r}: {error}.") from None
        settings = device_settings(self.device)
        apply_threads(settings)
        on_cpu = self.device.type == "cpu"
        self.threads = torch.get_num_threads() if on_cpu else None
        # Tunes the process's allocator once (see models.runtime.keep_freed_memory).
        self.keeps_freed_memory = on_cpu and keep_freed_memory()
        self._model, self._preprocess = _create_model(
            name, weights, self.device, local_text_tower(name, config, hub)
        )

        self.name = name
        self.pretrained = pretrained
        self.dim = int(config["embed_dim"])
        self.image_size = _side(self._model.visual.preprocess_cfg["size"])
        self.fingerprint = Fingerprint(model=name, pretrained=weights.identity, dim=self.dim)
        self.batch_size = batch_size or settings.batch_size
        self.runtime: Runtime = "float32"
        self.runtime_cosine: float | None = None  # the load check's worst probe, if any
        # "auto" tries the measured fast runtimes best first, then float32; an explicit
        # runtime is the only candidate, and its refusal an error.
        float32_probes = functools.cache(self._float32_probes)  # once for every candidate
        for candidate, fallback in zip(candidates, (*candidates[1:], "float32"), strict=True):
            if self._use_runtime(candidate, runtime != "auto", fallback, float32_probes):
                break

        # For zero-shot scoring: logit = logit_scale * cosine + logit_bias.
        bias = getattr(self._model, "logit_bias", None)
        self.scoring: Scoring = "sigmoid" if bias is not None else "softmax"
        self.logit_scale = float(self._model.logit_scale.detach().exp().item())
        self.logit_bias = float(bias.detach().item()) if bias is not None else 0.0

    def __repr__(self) -> str:
        return (
            f"Encoder({self.fingerprint.key!r}, device={self.device.type!r}, "
            f"runtime={self.runtime!r})"
        )

    @property
    def settings(self) -> dict[str, Any]:
        """How this encoder runs, for logs and benchmark reports."""
        return {
            "device": str(self.device),
            "runtime": self.runtime,
            "runtime_cosine": self.runtime_cosine,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "keeps_freed_memory": self.keeps_freed_memory,
        }

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own open_clip preprocessing: a (3, image_size, image_size) tensor.

        Bit-for-bit open_clip's, but cheap and free of torch threads (models.preprocess):
        the indexer calls it from its download threads.
        """
        return self._preprocess(image)

    @torch.inference_mode()
    def embed_images(
        self, images: Sequence[Image.Image], batch_size: int | None = None
    ) -> np.ndarray:
        """One unit vector per image: float32, shape (len(images), dim)."""
        return self._embed(
            images,
            batch_size,
            lambda chunk: self._encode_images(stack([self.preprocess(i) for i in chunk])),
        )

    @torch.inference_mode()
    def embed_tensors(self, batch: torch.Tensor | Sequence[torch.Tensor]) -> np.ndarray:
        """Unit vectors for images already preprocessed (e.g. in loader threads): (n, dim).

        Give a list of tensors rather than stacking them: they are stacked without torch's
        threads, which wait for a free core per tensor when the CPU is busy (models.preprocess).
        """
        if not isinstance(batch, torch.Tensor):
            batch = stack(batch, self.image_size)
        return self._embed(batch, None, self._encode_images)

    @property
    def preprocessing(self) -> Preprocess:
        """The preprocessing alone, picklable: for worker processes that make pictures
        (Preprocess.pixels) for `embed_pixels`."""
        return self._preprocess

    @torch.inference_mode()
    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Unit vectors for pictures as Preprocess.pixels makes them, stacked: uint8
        (n, H, W, 3). They go to the device as bytes, a quarter of the float tensor's, and
        are normalised there: the same vectors as `embed_tensors` of the same pictures."""
        return self._embed(
            torch.from_numpy(pixels),
            None,
            lambda chunk: self._encode_images(self._preprocess.normalise(chunk.to(self.device))),
        )

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """One unit vector per text: float32, shape (len(texts), dim)."""
        return self._embed(
            texts,
            batch_size,
            lambda chunk: self._model.encode_text(self._tokenize(list(chunk)).to(self.device)),
        )

    def _encode_images(self, batch: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self._model.encode_image(batch.to(self.device))

    def _autocast(self) -> AbstractContextManager[Any]:
        dtype = autocast_dtype(self.runtime)
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype)

    @torch.inference_mode()
    def _float32_probes(self) -> tuple[torch.Tensor, np.ndarray]:
        """The load check's probe pictures and float32's vectors of them."""
        probes = probe_batch(self._preprocess)
        return probes, self._encode_images(probes).float().cpu().numpy()

    @torch.inference_mode()
    def _use_runtime(
        self,
        runtime: Runtime,
        explicit: bool,
        fallback: str,
        float32_probes: Callable[[], tuple[torch.Tensor, np.ndarray]],
    ) -> bool:
        """Switch the image tower to `runtime` if its vectors stay close to float32's on
        `float32_probes` (the probe pictures and float32's vectors of them); False (after a
        warning naming `fallback`, or an error when `explicit`) if not."""
        if runtime == "float32":
            return True
        probes, reference = float32_probes()
        float_tower = self._model.visual
        try:
            if runtime == "int8":
                self._model.visual = quantized_copy(float_tower)
            self.runtime = runtime
            candidate = self._encode_images(probes).float().cpu().numpy()
            worst = float(cosines(reference, candidate).min())
            problem = (
                None
                if worst >= LOAD_CHECK_MIN_COSINE
                else f"its vectors differ from float32 (worst cosine {worst:.4f}, "
                f"needs {LOAD_CHECK_MIN_COSINE})"
            )
        except (NoBlocksError, RuntimeError) as error:
            worst, problem = None, f"it cannot be applied ({error})"
        if problem is None:
            self.runtime_cosine = worst
            return True
        self._model.visual, self.runtime = float_tower, "float32"
        message = f"Model {self.name!r} cannot run in {runtime}: {problem}."
        if explicit:
            advice = " Use runtime 'float32' (or 'auto')."
            raise RuntimeRefusedError(message + advice, runtime, worst)
        log.warning(
            "%s %s.", message, "Using float32" if fallback == "float32" else f"Trying {fallback}"
        )
        return False

    def _embed(
        self,
        items: Sequence[Any] | torch.Tensor,
        batch_size: int | None,
        encode: Callable[[Any], torch.Tensor],
    ) -> np.ndarray:
        size = batch_size or self.batch_size
        if size < 1:
            raise ValueError(f"batch_size must be at least 1, not {size}")
        parts = [
            encode(items[start : start + size]).float().cpu().numpy()
            for start in range(0, len(items), size)
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(np.concatenate(parts))


def _pretrained_or_default(name: str, pretrained: str | os.PathLike[str] | None) -> str:
    if pretrained is not None and os.fspath(pretrained) != "":  # "" would mean the cwd
        return os.fspath(pretrained)
    chosen = default_pretrained(name)
    if chosen is None:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise UnknownPretrainedError(
            f"Model {name!r} needs a pretrained value: one of its tags ({tags}), "
            f"a checkpoint file or folder, or {RANDOM!r}."
        )
    return chosen


def _create_model(
    name: str, weights: ResolvedWeights, device: torch.device, model_kwargs: dict[str, Any]
) -> tuple[Any, Preprocess]:
    """Build through open_clip's own factory, with the checkpoint already on disk.
    The model is Any: its towers and scales are attributes open_clip sets, which torch's
    Module types only as Tensor | Module."""
    preprocess = weights.preprocess
    try:
        with _seeded(RANDOM_SEED):
            model, _, preprocess_val = open_clip.create_model_and_transforms(
                name,
                pretrained=str(weights.checkpoint) if weights.checkpoint else None,
                device=device,
                image_mean=preprocess.get("mean"),
                image_std=preprocess.get("std"),
                image_interpolation=preprocess.get("interpolation"),
                image_resize_mode=preprocess.get("resize_mode"),
                # Base tower weights from the hub are never wanted: the CLIP checkpoint has them,
                # and "random" must stay random.
                pretrained_image=False,
                pretrained_text=False,
                **model_kwargs,
            )
    except Exception as error:  # open_clip, torch and safetensors raise all kinds here
        raise ModelError(
            f"Cannot load model {name!r} from {weights.checkpoint}: "
            f"{type(error).__name__}: {error}. Is the file whole, and made for that model?"
        ) from error
    model.eval()
    return model, Preprocess(preprocess_val)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed weight initialisation without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _side(size: int | Sequence[int]) -> int:
    return int(size) if isinstance(size, int) else int(max(size))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
