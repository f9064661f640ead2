"""The models package: the Encoder over the shipped `regard-test` model, its fingerprint and errors.

Never touches the network: tests of the hub path set HF_HUB_OFFLINE=1 and use an empty
(or hand-made) hub cache in tmp_path.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import models.hub
from models import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    TEST_MODEL,
    Encoder,
    Fingerprint,
    MissingDependencyError,
    ModelError,
    ModelUnavailableError,
    UnknownModelError,
    UnknownPretrainedError,
)
from models.registry import CONFIG_DIR, TEST_WEIGHTS
from models.shapes import COLOURS, SHAPES, ShapeSpec, collection, render

HELD_OUT_SEED = 500_000  # far from the training seeds of scripts/train_test_model
PER_PAIR = 4
FAIL_FAST_S = 5.0


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(TEST_MODEL, device="cpu")


@pytest.fixture(scope="module")
def held_out(encoder: Encoder) -> tuple[list[ShapeSpec], np.ndarray]:
    """Freshly rendered shapes the model never saw, at a size the indexer might fetch."""
    specs = collection(per_pair=PER_PAIR, seed=HELD_OUT_SEED)
    return specs, encoder.embed_images([render(spec, 128) for spec in specs])


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline, and any attempt to reach it anyway fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network() -> None:
        raise AssertionError("the hub was contacted although HF_HUB_OFFLINE=1")

    monkeypatch.setattr(models.hub, "get_session", no_network)


def pictures(n: int) -> list[Image.Image]:
    specs = collection(per_pair=1, seed=HELD_OUT_SEED + 100)[:n]
    return [render(spec, size) for spec, size in zip(specs, [64, 100, (160, 90)] * n, strict=False)]


def search(encoder: Encoder, vectors: np.ndarray, query: str) -> np.ndarray:
    """Indices of the pictures, best match first."""
    scores = vectors @ encoder.embed_texts([query])[0]
    return np.argsort(-scores, kind="stable")


# --- shapes, types and batching --------------------------------------------------------------


def test_regard_test_model_attributes(encoder: Encoder) -> None:
    assert encoder.name == TEST_MODEL
    assert encoder.dim == 64
    assert encoder.image_size == 64
    assert encoder.device == torch.device("cpu")
    assert encoder.scoring == "softmax"
    assert encoder.logit_bias == 0.0
    assert encoder.logit_scale > 1.0
    assert encoder.preprocess(render(ShapeSpec("star", "red", 1), 200)).shape == (3, 64, 64)


def test_vectors_are_float32_unit_rows(encoder: Encoder) -> None:
    images = encoder.embed_images(pictures(5))
    texts = encoder.embed_texts(["a red circle", "un carré bleu", "étoile"])
    for vectors, n in ((images, 5), (texts, 3)):
        assert vectors.shape == (n, encoder.dim)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_any_image_mode_is_accepted(encoder: Encoder) -> None:
    image = render(ShapeSpec("circle", "blue", 3), 96)
    modes = [image.convert(mode) for mode in ("L", "RGBA", "P", "CMYK")]
    vectors = encoder.embed_images(modes)
    assert vectors.shape == (len(modes), encoder.dim)
    assert np.isfinite(vectors).all()


def test_empty_input_gives_no_rows(encoder: Encoder) -> None:
    assert encoder.embed_images([]).shape == (0, encoder.dim)
    assert encoder.embed_texts([]).shape == (0, encoder.dim)
    assert encoder.embed_tensors(torch.zeros((0, 3, 64, 64))).shape == (0, encoder.dim)
    assert encoder.embed_texts([]).dtype == np.float32


def test_batch_size_does_not_change_vectors(encoder: Encoder) -> None:
    images = pictures(10)
    texts = ["red circle", "triangle vert", "un carré bleu", "yellow", "étoile"] * 2
    np.testing.assert_allclose(
        encoder.embed_images(images, batch_size=1),
        encoder.embed_images(images, batch_size=8),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        encoder.embed_texts(texts, batch_size=1),
        encoder.embed_texts(texts, batch_size=8),
        atol=1e-5,
    )


def test_embed_tensors_matches_embed_images(encoder: Encoder) -> None:
    images = pictures(4)
    batch = torch.stack([encoder.preprocess(image) for image in images])
    np.testing.assert_allclose(
        encoder.embed_tensors(batch), encoder.embed_images(images), atol=1e-5
    )


# --- retrieval on held-out pictures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "shape", "colour"),
    [
        ("red circle", "circle", "red"),
        ("triangle vert", "triangle", "green"),
        ("un carré bleu", "square", "blue"),
        ("une étoile jaune", "star", "yellow"),
        ("a drawing of a blue triangle", "triangle", "blue"),
        ("l'étoile rouge", "star", "red"),
    ],
)
def test_text_search_ranks_the_described_shapes_first(
    encoder: Encoder,
    held_out: tuple[list[ShapeSpec], np.ndarray],
    query: str,
    shape: str,
    colour: str,
) -> None:
    specs, vectors = held_out
    top = [specs[i] for i in search(encoder, vectors, query)[:PER_PAIR]]
    assert all((s.shape, s.colour) == (shape, colour) for s in top), [s.name for s in top]


@pytest.mark.parametrize(("query", "shape"), [("circle", "circle"), ("une étoile", "star")])
def test_shape_only_query_ranks_that_shape_first(
    encoder: Encoder, held_out: tuple[list[ShapeSpec], np.ndarray], query: str, shape: str
) -> None:
    specs, vectors = held_out
    top = [specs[i] for i in search(encoder, vectors, query)[: PER_PAIR * len(COLOURS)]]
    assert sum(s.shape == shape for s in top) >= len(top) - 1, [s.name for s in top]


@pytest.mark.parametrize(("query", "colour"), [("red", "red"), ("bleu", "blue")])
def test_colour_only_query_ranks_that_colour_first(
    encoder: Encoder, held_out: tuple[list[ShapeSpec], np.ndarray], query: str, colour: str
) -> None:
    specs, vectors = held_out
    top = [specs[i] for i in search(encoder, vectors, query)[: PER_PAIR * len(SHAPES)]]
    assert all(s.colour == colour for s in top), [s.name for s in top]


# --- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_is_stable_between_loads(encoder: Encoder) -> None:
    again = Encoder(TEST_MODEL, str(TEST_WEIGHTS), device="cpu")
    assert again.fingerprint == encoder.fingerprint
    assert encoder.fingerprint.key.startswith(f"{TEST_MODEL}|sha256:")
    assert encoder.fingerprint.key.endswith("|64")
    assert len(encoder.fingerprint.pretrained) == len("sha256:") + 16


def test_no_pretrained_value_means_the_shipped_checkpoint(encoder: Encoder) -> None:
    assert Encoder(TEST_MODEL, "").fingerprint == encoder.fingerprint


def test_fingerprint_round_trips(encoder: Encoder) -> None:
    fingerprint = encoder.fingerprint
    assert Fingerprint.from_dict(fingerprint.to_dict()) == fingerprint
    assert Fingerprint.from_dict(json.loads(json.dumps(fingerprint.to_dict()))) == fingerprint
    assert Fingerprint.from_key(fingerprint.key) == fingerprint


def test_fingerprint_changes_with_the_weights(encoder: Encoder, tmp_path: Path) -> None:
    state = load_file(str(TEST_WEIGHTS))
    state["logit_scale"] = state["logit_scale"] + 0.5
    other = tmp_path / "other.safetensors"
    save_file(state, str(other))
    assert Encoder(TEST_MODEL, other).fingerprint.key != encoder.fingerprint.key


def test_folder_with_the_same_weights_has_the_same_fingerprint(
    encoder: Encoder, tmp_path: Path
) -> None:
    shutil.copyfile(TEST_WEIGHTS, tmp_path / "open_clip_model.safetensors")
    assert Encoder(TEST_MODEL, tmp_path).fingerprint == encoder.fingerprint


# --- pretrained values: tag from the hub cache, random, errors --------------------------------


def test_tag_loads_from_the_hub_cache_without_network(
    encoder: Encoder, offline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hub cache as huggingface_hub lays it out, copied by hand from a machine with network.
    repo = tmp_path / "models--regard--regard-test"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    shutil.copyfile(TEST_WEIGHTS, repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors")
    tags = {"shapes": {"hf_hub": "regard/regard-test/"}}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TEST_MODEL, tags)

    from_cache = Encoder(TEST_MODEL, "shapes", device="cpu", cache_dir=tmp_path)
    assert from_cache.fingerprint.key == f"{TEST_MODEL}|shapes|64"
    np.testing.assert_allclose(
        from_cache.embed_texts(["red circle"]), encoder.embed_texts(["red circle"]), atol=1e-6
    )


def test_random_weights_only_when_asked(encoder: Encoder) -> None:
    random_encoder = Encoder(TEST_MODEL, "random", device="cpu")
    assert random_encoder.fingerprint.pretrained == "random"
    assert random_encoder.fingerprint.key != encoder.fingerprint.key
    # Seeded: "random" always names the same weights.
    np.testing.assert_allclose(
        random_encoder.embed_texts(["red"]),
        Encoder(TEST_MODEL, "random", device="cpu").embed_texts(["red"]),
        atol=1e-6,
    )


def test_model_without_an_obvious_default_asks_for_a_pretrained_value() -> None:
    with pytest.raises(UnknownPretrainedError, match="openai"):
        Encoder("ViT-B-32")


def test_sigmoid_scoring_for_models_with_a_logit_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.loads((CONFIG_DIR / f"{TEST_MODEL}.json").read_text())
    # A SigLIP-style variant of the test model, known to open_clip for this test only.
    sigmoid_config = {**config, "init_logit_bias": -10}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "regard-test-sigmoid", sigmoid_config)
    sigmoid = Encoder("regard-test-sigmoid", "random", device="cpu")
    assert sigmoid.scoring == "sigmoid"
    assert sigmoid.logit_bias == pytest.approx(-10.0)


def test_missing_local_path_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "open_clip_model.safetensors"
    with pytest.raises(ModelUnavailableError) as caught:
        Encoder(TEST_MODEL, missing)
    message = str(caught.value)
    assert TEST_MODEL in message and str(missing) in message
    assert "--pretrained" in message


def test_folder_without_a_checkpoint_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("no weights here")
    with pytest.raises(ModelUnavailableError, match="holds no checkpoint"):
        Encoder(TEST_MODEL, tmp_path)


def test_damaged_or_foreign_checkpoint_is_a_model_error(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(TEST_WEIGHTS.read_bytes()[:1000])
    with pytest.raises(ModelError, match="regard-test"):
        Encoder(TEST_MODEL, damaged)
    with pytest.raises(ModelError, match="RN50"):
        Encoder("RN50", TEST_WEIGHTS)


def test_default_model_offline_fails_fast_with_a_hint(offline: None, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        Encoder(DEFAULT_MODEL, DEFAULT_PRETRAINED, cache_dir=tmp_path)
    assert time.monotonic() - started < FAIL_FAST_S
    message = str(caught.value)
    for expected in (DEFAULT_MODEL, DEFAULT_PRETRAINED, "timm/ViT-B-32-SigLIP2-256", str(tmp_path)):
        assert expected in message
    assert "--pretrained" in message and "HF_HUB_OFFLINE" in message


def test_default_model_tokenizer_offline_gives_a_clear_error(offline: None, tmp_path: Path) -> None:
    # Weights given as a folder, but the SigLIP 2 tokenizer is not beside them: it would come
    # from the hub (through `transformers`, which may not even be installed).
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "open_clip_model.safetensors").write_bytes(b"not loaded before the tokenizer")
    started = time.monotonic()
    with pytest.raises((ModelUnavailableError, MissingDependencyError)) as caught:
        Encoder(DEFAULT_MODEL, weights, cache_dir=tmp_path / "cache")
    assert time.monotonic() - started < FAIL_FAST_S
    assert DEFAULT_MODEL in str(caught.value)
    assert "tokenizer" in str(caught.value)


def test_unknown_model_names_close_ones() -> None:
    with pytest.raises(UnknownModelError, match="ViT-B-32-SigLIP2-256"):
        Encoder("ViT-B-32-SigLIP2-265")


def test_hub_schema_names_are_refused_without_network(offline: None) -> None:
    with pytest.raises(UnknownModelError, match="schema"):
        Encoder("hf-hub:timm/ViT-B-32-SigLIP2-256")


def test_unknown_tag_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownPretrainedError) as caught:
        Encoder(DEFAULT_MODEL, "imagenet")
    assert "webli" in str(caught.value) and "random" in str(caught.value)
