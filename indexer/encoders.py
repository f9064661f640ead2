"""Choosing and loading the model of a store: a store never mixes two models."""

from __future__ import annotations

from models import DEFAULT_MODEL, DEFAULT_PRETRAINED, TEST_MODEL, Encoder

from .store import ModelMismatchError, Store


def default_pretrained(name: str) -> str | None:
    """The tag to use when only a model name is given."""
    if name == DEFAULT_MODEL:
        return DEFAULT_PRETRAINED
    if name == TEST_MODEL:
        return None  # the checkpoint shipped in models/
    return None


def encoder_for_indexing(
    store: Store,
    name: str | None,
    pretrained: str | None,
    device: str | None = None,
    runtime: str = "auto",
    batch_size: int | None = None,
) -> Encoder:
    """The encoder to index with: the store's own, or the one asked for on a new store.

    `runtime` and `batch_size` change only speed (see models.runtime): a store may be
    filled by runs of different runtimes, as every runtime is checked against float32.
    """
    recorded = store.model
    if recorded is not None and name is None and pretrained is None:
        return encoder_for_store(store, device, runtime, batch_size)
    if recorded is not None and name is not None and name != recorded.name:
        raise ModelMismatchError(
            f"the store in {store.path} was built with {recorded.name}"
            + (f" (pretrained {recorded.pretrained})" if recorded.pretrained else "")
            + f"; it cannot take vectors of {name}: "
            f"use a new --store for another model"
        )
    name = name or (recorded.name if recorded else DEFAULT_MODEL)
    if pretrained is None:
        pretrained = (recorded.pretrained or None) if recorded else default_pretrained(name)
    encoder = Encoder(name, pretrained, device=device, runtime=runtime, batch_size=batch_size)
    # What the user gave is recorded, not a resolved path: the shipped test checkpoint
    # lives in a different folder in every clone, and its fingerprint is what is checked.
    store.bind_model(name, pretrained or "", fingerprint_record(encoder))
    return encoder


def encoder_for_store(
    store: Store, device: str | None = None, runtime: str = "auto", batch_size: int | None = None
) -> Encoder:
    """Load the model the store's vectors were made with, and check it is the same."""
    recorded = store.model
    if recorded is None:
        raise ModelMismatchError(
            f"the store in {store.path} has no model yet: index something into it first"
        )
    encoder = Encoder(
        recorded.name,
        recorded.pretrained or None,
        device=device,
        runtime=runtime,
        batch_size=batch_size,
    )
    if encoder.fingerprint.key != recorded.key:
        raise ModelMismatchError(
            f"the weights found for {recorded.name} ({encoder.fingerprint.key}) are not the "
            f"ones this store was built with ({recorded.key}): point --pretrained at the "
            f"original weights, or re-index into a new store"
        )
    return encoder


def fingerprint_record(encoder: Encoder) -> dict:
    """The fingerprint as the store keeps it: its fields and its key."""
    return {**encoder.fingerprint.to_dict(), "key": encoder.fingerprint.key}
