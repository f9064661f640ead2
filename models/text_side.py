"""The text side of a model: its tokenizer, and a text tower that lives on the hub.

Most open_clip models tokenize with the BPE vocabulary bundled in open_clip (offline).
Others name a Hugging Face tokenizer (SigLIP 2: "timm/ViT-B-32-SigLIP2-256") or a whole
Hugging Face text model (XLM-R). Those files are fetched here, through the same fast
hub-or-cache path as the weights, and handed to open_clip as local folders, so that
`transformers` never goes to the network itself (it would retry for minutes offline).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

from models.checkpoints import TOKENIZER_FILES, supply_hint
from models.errors import MissingDependencyError, ModelUnavailableError
from models.hub import HubAccess, HubFileMissingError

Tokenizer = Callable[[list[str]], torch.Tensor]


def load_tokenizer(
    name: str, config: dict[str, Any], tokenizer_dir: Path | None, hub: HubAccess | None
) -> Tokenizer:
    """The tokenizer open_clip would build for `name`, from local files only."""
    text_config = config.get("text_cfg", {})
    hf_name = text_config.get("hf_tokenizer_name")
    if not hf_name:
        return open_clip.get_tokenizer(name)
    _require_transformers(name, "tokenizer")
    source = tokenizer_dir or _fetch(name, hf_name, TOKENIZER_FILES, "tokenizer", hub)
    # The same construction as open_clip.get_tokenizer, with a local folder as the source.
    return HFTokenizer(
        str(source),
        context_length=text_config.get("context_length", DEFAULT_CONTEXT_LENGTH),
        tokenizer_mode=text_config.get("tokenizer_mode"),
        **text_config.get("tokenizer_kwargs", {}),
    )


def local_text_tower(name: str, config: dict[str, Any], hub: HubAccess | None) -> dict[str, Any]:
    """Model kwargs pointing a Hugging Face text tower at a local copy of its config, if any."""
    text_config = config.get("text_cfg", {})
    hf_model = text_config.get("hf_model_name")
    if not hf_model:
        return {}
    _require_transformers(name, "text tower")
    folder = _fetch(name, hf_model, ("config.json",), "text tower config", hub)
    # Its weights come with the CLIP checkpoint: only the architecture is read here.
    local = {**text_config, "hf_model_name": str(folder), "hf_model_pretrained": False}
    return {"text_cfg": local}


def _fetch(
    name: str, repo_id: str, files: tuple[str, ...], what: str, hub: HubAccess | None
) -> Path:
    hub = hub or HubAccess()
    try:
        return hub.folder(repo_id, list(files))
    except HubFileMissingError as missing:
        raise ModelUnavailableError(
            f"Cannot load model {name!r}: its {what} ({repo_id}) is not available. "
            f"Looked in {missing.where}. " + supply_hint(name)
        ) from missing.cause


def _require_transformers(name: str, what: str) -> None:
    if importlib.util.find_spec("transformers") is None:
        raise MissingDependencyError(
            f"Model {name!r} needs the 'transformers' package for its {what}; "
            "install it with `pip install transformers`."
        )
