"""Turning a pretrained value into a checkpoint file on this machine, or refusing clearly.

The pretrained value of a model is one of:
- an open_clip tag ("webli"): the checkpoint comes from the hub, or from the hub cache;
- a local checkpoint file, or a folder holding one (a hub snapshot copied by hand works);
- "random": no weights at all, only when asked for in so many words (speed benchmarks).
Nothing here ever falls back to random weights on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip

from models.errors import ModelUnavailableError, UnknownPretrainedError
from models.hub import HubAccess, HubFileMissingError

RANDOM = "random"

# open_clip's own preference when a folder holds several checkpoints.
CHECKPOINT_NAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")

# open_clip's default name for hub checkpoints, and the safetensors copy preferred to it.
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's weights are on disk, and what identifies them."""

    checkpoint: Path | None  # None only for "random"
    identity: str  # the tag, "sha256:<16 hex>" of a local file, or "random"
    preprocess: dict[str, Any] = field(default_factory=dict)  # overrides of open_clip's defaults
    tokenizer_dir: Path | None = None  # a local folder with tokenizer files, when one came along


def resolve_weights(name: str, pretrained: str, hub: HubAccess | None = None) -> ResolvedWeights:
    """Find the weights of `name` for `pretrained`; raise a ModelError that says what to do."""
    if pretrained == RANDOM:
        return ResolvedWeights(None, RANDOM, preprocess=shared_tag_preprocess(name))
    tag_config = open_clip.get_pretrained_cfg(name, pretrained)
    if tag_config:
        return _from_tag(name, pretrained, tag_config, hub or HubAccess())
    path = Path(pretrained).expanduser()
    if path.is_file():
        return _from_file(name, path)
    if path.is_dir():
        return _from_folder(name, path)
    if _looks_like_path(pretrained):
        raise ModelUnavailableError(
            f"Cannot load model {name!r}: the checkpoint path {str(path)!r} does not exist. "
            + supply_hint(name)
        )
    raise UnknownPretrainedError(_unknown_tag_message(name, pretrained))


def supply_hint(name: str) -> str:
    """How to give Regard a local copy of a model's weights; shared by every 'unavailable' error."""
    return (
        "To use a local copy, pass the checkpoint file or the folder holding it, e.g. "
        f"`regard index ... --model {name} --pretrained /path/to/open_clip_model.safetensors` "
        "(or `--pretrained /path/to/folder/`, with the tokenizer files beside it if the model "
        "has its own). Or copy the Hugging Face cache (~/.cache/huggingface/hub, or $HF_HOME) "
        "from a machine with network access, where the model was loaded once."
    )


def shared_tag_preprocess(name: str) -> dict[str, Any]:
    """The preprocessing that every pretrained tag of `name` agrees on, if they do.

    open_clip keeps normalisation and resizing with the tag, not the architecture, so a
    checkpoint given as a path would get OpenAI's defaults: wrong for SigLIP models.
    """
    configs = [
        open_clip.get_pretrained_cfg(name, t) for t in open_clip.list_pretrained_tags_by_model(name)
    ]
    if not configs:
        return {}
    first = _preprocess_of(configs[0])
    return first if all(_preprocess_of(c) == first for c in configs[1:]) else {}


def file_identity(path: Path) -> str:
    """The id of a checkpoint file, "sha256:" and 16 hex digits: the same bytes, the same id."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:16]}"


def _from_tag(name: str, tag: str, config: dict[str, Any], hub: HubAccess) -> ResolvedWeights:
    tag = tag.lower().replace("-", "_")  # open_clip's own normalisation of tags
    hub_path = config.get("hf_hub", "")
    if not hub_path:  # every tag of open_clip 3.x has a hub copy; a direct URL is a fallback
        return _from_url(name, tag, config)
    # "org/repo/" means open_clip's default file name; "org/repo/file.bin" names the file.
    repo_id, filename = os.path.split(hub_path)
    filename = filename or HF_WEIGHTS_NAME
    try:
        checkpoint = hub.file(repo_id, _safetensors_first(filename))
    except HubFileMissingError as missing:
        raise ModelUnavailableError(
            f"Cannot load model {name!r} with pretrained {tag!r}: its weights are not available. "
            f"Looked in {missing.where}."
            + (f" Last error: {missing.cause}." if missing.cause else "")
            + " "
            + supply_hint(name)
        ) from missing.cause
    return ResolvedWeights(checkpoint, tag, preprocess=_preprocess_of(config))


def _from_url(name: str, tag: str, config: dict[str, Any]) -> ResolvedWeights:
    try:
        checkpoint = Path(open_clip.download_pretrained(config))
    except Exception as error:
        raise ModelUnavailableError(
            f"Cannot load model {name!r} with pretrained {tag!r} "
            f"from {config.get('url')}: {error}. " + supply_hint(name)
        ) from error
    return ResolvedWeights(checkpoint, tag, preprocess=_preprocess_of(config))


def _from_file(name: str, path: Path) -> ResolvedWeights:
    return ResolvedWeights(
        path.resolve(), file_identity(path), preprocess=shared_tag_preprocess(name)
    )


def _from_folder(name: str, folder: Path) -> ResolvedWeights:
    folder = _snapshot_inside(folder)
    checkpoint = _checkpoint_in(folder)
    if checkpoint is None:
        raise ModelUnavailableError(
            f"Cannot load model {name!r}: the folder {str(folder)!r} holds no checkpoint "
            f"(looked for {', '.join(CHECKPOINT_NAMES[:3])} or any *.safetensors/*.bin/*.pth). "
            + supply_hint(name)
        )
    preprocess = {**shared_tag_preprocess(name), **_folder_preprocess(folder)}
    has_tokenizer = any((folder / f).is_file() for f in TOKENIZER_FILES)
    return ResolvedWeights(
        checkpoint.resolve(),
        file_identity(checkpoint),
        preprocess=preprocess,
        tokenizer_dir=folder.resolve() if has_tokenizer else None,
    )


def _snapshot_inside(folder: Path) -> Path:
    """A copied hub cache entry (models--org--name) keeps its files under snapshots/<rev>/."""
    snapshots = sorted(
        (p for p in (folder / "snapshots").glob("*") if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
    )
    if _checkpoint_in(folder) is None and snapshots:
        return snapshots[-1]
    return folder


def _checkpoint_in(folder: Path) -> Path | None:
    for filename in CHECKPOINT_NAMES:
        if (folder / filename).is_file():
            return folder / filename
    others = sorted(p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file())
    return others[0] if others else None


def _folder_preprocess(folder: Path) -> dict[str, Any]:
    """The preprocess_cfg of an open_clip_config.json beside the checkpoint (hub repos have one)."""
    config_file = folder / "open_clip_config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return _preprocess_of(config.get("preprocess_cfg", {}))


def _preprocess_of(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config[key] for key in PREPROCESS_KEYS if key in config}


def _safetensors_first(filename: str) -> list[str]:
    """The safetensors copy of a hub checkpoint before the pickle, as open_clip does."""
    if filename == HF_WEIGHTS_NAME:
        return [HF_SAFE_WEIGHTS_NAME, filename]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or "/" in value
        or value.startswith(("~", "."))
        or value.endswith(CHECKPOINT_SUFFIXES + (".npz",))
    )


def _unknown_tag_message(name: str, pretrained: str) -> str:
    tags = open_clip.list_pretrained_tags_by_model(name)
    known = (
        f"Its tags: {', '.join(tags)}."
        if tags
        else f"open_clip knows no pretrained tag for {name!r}."
    )
    return (
        f"Unknown pretrained value {pretrained!r} for model {name!r}: not a tag of that model, "
        f"and no such file or folder. {known} Give a tag, a path to a checkpoint file or folder, "
        f"or {RANDOM!r} for random weights (benchmarks only)."
    )
