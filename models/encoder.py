"""The encoder: one open_clip model that turns images and texts into unit vectors.

encoder = Encoder("regard-test")                      # the tiny model shipped for tests
encoder = Encoder("ViT-B-32-SigLIP2-256", "webli")    # hub tag, cached after first use
encoder = Encoder("ViT-B-32-SigLIP2-256", "/srv/models/siglip2/")  # air-gapped copy
vectors = encoder.embed_texts(["fauteuil en fer forgé"])  # (1, dim) float32, unit rows
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import open_clip
import torch
from PIL import Image

from models.checkpoints import RANDOM, ResolvedWeights, resolve_weights
from models.errors import ModelError, UnknownPretrainedError
from models.fingerprint import Fingerprint
from models.hub import HubAccess
from models.registry import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    TEST_MODEL,
    default_pretrained,
    model_config,
)
from models.text_side import load_tokenizer, local_text_tower

__all__ = ["DEFAULT_MODEL", "DEFAULT_PRETRAINED", "TEST_MODEL", "Encoder"]

Scoring = Literal["sigmoid", "softmax"]

# Random weights are seeded so that "random" always names the same weights (per torch version).
RANDOM_SEED = 0


class Encoder:
    """An open_clip model in eval mode, with its preprocessing and tokenizer.

    `pretrained` is an open_clip tag, a local checkpoint file or folder, or "random"
    (only ever when asked for). When None, Regard's choice for that model is used: the
    shipped checkpoint for `regard-test`, "webli" for the default model.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        pretrained: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int | None = None,
    ) -> None:
        config = model_config(name)
        pretrained = _pretrained_or_default(name, pretrained)
        hub = HubAccess(cache_dir)
        weights = resolve_weights(name, pretrained, hub)
        self._tokenize = load_tokenizer(name, config, weights.tokenizer_dir, hub)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model, self._preprocess = _create_model(
            name, weights, self.device, local_text_tower(name, config, hub)
        )

        self.name = name
        self.pretrained = pretrained
        self.dim = int(config["embed_dim"])
        self.image_size = _side(self._model.visual.preprocess_cfg["size"])
        self.fingerprint = Fingerprint(model=name, pretrained=weights.identity, dim=self.dim)
        self.batch_size = batch_size or (128 if self.device.type == "cuda" else 32)

        # For zero-shot scoring: logit = logit_scale * cosine + logit_bias.
        bias = getattr(self._model, "logit_bias", None)
        self.scoring: Scoring = "sigmoid" if bias is not None else "softmax"
        self.logit_scale = float(self._model.logit_scale.detach().exp().item())
        self.logit_bias = float(bias.detach().item()) if bias is not None else 0.0

    def __repr__(self) -> str:
        return f"Encoder({self.fingerprint.key!r}, device={self.device.type!r})"

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own open_clip preprocessing: a (3, image_size, image_size) tensor."""
        return self._preprocess(image)

    @torch.inference_mode()
    def embed_images(
        self, images: Sequence[Image.Image], batch_size: int | None = None
    ) -> np.ndarray:
        """One unit vector per image: float32, shape (len(images), dim)."""
        return self._embed(
            images,
            batch_size,
            lambda chunk: self._model.encode_image(
                torch.stack([self.preprocess(image) for image in chunk]).to(self.device)
            ),
        )

    @torch.inference_mode()
    def embed_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Unit vectors for images already preprocessed (e.g. in loader threads): (n, dim)."""
        return self._embed(
            batch, None, lambda chunk: self._model.encode_image(chunk.to(self.device))
        )

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """One unit vector per text: float32, shape (len(texts), dim)."""
        return self._embed(
            texts,
            batch_size,
            lambda chunk: self._model.encode_text(self._tokenize(list(chunk)).to(self.device)),
        )

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
) -> tuple[torch.nn.Module, Callable[[Image.Image], torch.Tensor]]:
    """Build through open_clip's own factory, with the checkpoint already on disk."""
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
    return model, preprocess_val


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
