"""The errors of `models`: each message says what went wrong and what a person can do next.

They are plain exceptions (this package knows nothing of HTTP); the CLI and the service
turn them into their own messages and status codes.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class: a model could not be set up or used."""


class UnknownModelError(ModelError):
    """The model name is not an open_clip architecture (nor a config shipped with Regard)."""


class UnknownPretrainedError(ModelError):
    """The pretrained value is neither a tag of that model, nor a path, nor "random"."""


class ModelUnavailableError(ModelError):
    """The weights (or tokenizer files) can be had neither from the hub nor from a local path."""


class MissingDependencyError(ModelError):
    """The model needs an optional Python package that is not installed."""


class RuntimeRefusedError(ModelError):
    """A runtime asked for by name failed the check against float32 at load."""

    def __init__(self, message: str, runtime: str, worst_cosine: float | None) -> None:
        super().__init__(message)
        self.runtime = runtime
        self.worst_cosine = worst_cosine  # on the probe pictures; None: it could not run
