"""Everything that turns pixels or words into vectors (imports torch, open_clip, numpy, PIL only).

The names below are loaded on first use: `import models.shapes` (the IIIF test server,
the demo) must not pay for importing torch and open_clip.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.encoder import Encoder
    from models.errors import (
        MissingDependencyError,
        ModelError,
        ModelUnavailableError,
        RuntimeRefusedError,
        UnknownModelError,
        UnknownPretrainedError,
    )
    from models.fingerprint import Fingerprint
    from models.registry import DEFAULT_MODEL, DEFAULT_PRETRAINED, TEST_MODEL

_EXPORTS = {
    "DEFAULT_MODEL": "models.registry",
    "DEFAULT_PRETRAINED": "models.registry",
    "TEST_MODEL": "models.registry",
    "Encoder": "models.encoder",
    "Fingerprint": "models.fingerprint",
    "MissingDependencyError": "models.errors",
    "ModelError": "models.errors",
    "ModelUnavailableError": "models.errors",
    "RuntimeRefusedError": "models.errors",
    "UnknownModelError": "models.errors",
    "UnknownPretrainedError": "models.errors",
}

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "TEST_MODEL",
    "Encoder",
    "Fingerprint",
    "MissingDependencyError",
    "ModelError",
    "ModelUnavailableError",
    "RuntimeRefusedError",
    "UnknownModelError",
    "UnknownPretrainedError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value
