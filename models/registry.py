"""Model names: the defaults, the configs shipped with Regard, and checks on a name.

A model is an open_clip architecture name plus a pretrained value. Regard ships one
architecture of its own, `regard-test`, as an open_clip config in `models/configs/`;
registering that folder with open_clip lets it load through exactly the same
`create_model_and_transforms` / `get_tokenizer` path as any other model.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import open_clip

from models.errors import UnknownModelError

DEFAULT_MODEL = "ViT-B-32-SigLIP2-256"
DEFAULT_PRETRAINED = "webli"
TEST_MODEL = "regard-test"

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "configs"
WEIGHTS_DIR = PACKAGE_DIR / "weights"
TEST_WEIGHTS = WEIGHTS_DIR / f"{TEST_MODEL}.safetensors"

_registered = False


def register_shipped_configs() -> None:
    """Make the configs in `models/configs/` known to open_clip (once per process)."""
    global _registered
    # add_model_config appends to open_clip's search path on every call: guard it.
    if not _registered:
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


def model_config(name: str) -> dict[str, Any]:
    """The open_clip config of `name` (a copy), or UnknownModelError naming close matches."""
    if ":" in name:  # open_clip would fetch "hf-hub:…" configs itself, slowly when offline
        raise UnknownModelError(
            f"Model {name!r}: names with a schema (hf-hub:, local-dir:) are not supported; "
            "give the architecture name and the checkpoint folder as the pretrained value."
        )
    register_shipped_configs()
    config = open_clip.get_model_config(name)
    if config is None:
        raise UnknownModelError(_unknown_model_message(name))
    return config


def default_pretrained(name: str) -> str | None:
    """The pretrained value to use when none is given, or None when there is no obvious one."""
    if name == TEST_MODEL:
        return str(TEST_WEIGHTS)
    if name == DEFAULT_MODEL:
        return DEFAULT_PRETRAINED
    tags = open_clip.list_pretrained_tags_by_model(name)
    return tags[0] if len(tags) == 1 else None


def _unknown_model_message(name: str) -> str:
    known = open_clip.list_models()
    # Names are case-sensitive in open_clip: a case-only difference goes first.
    same_but_case = [m for m in known if m.lower() == name.lower()]
    close = same_but_case + difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    close = list(dict.fromkeys(close))[:5]
    if not close:
        # Fall back on names sharing the first word, e.g. "ViT-B-32…" for a typo further on.
        prefix = name.split("-")[0].lower()
        close = [m for m in known if m.lower().startswith(prefix)][:5]
    hint = f" Close names: {', '.join(close)}." if close else ""
    return (
        f"Unknown model {name!r}: it is not an open_clip architecture.{hint} "
        f"open_clip.list_models() lists all {len(known)} names; "
        f"{DEFAULT_MODEL!r} is Regard's default."
    )
