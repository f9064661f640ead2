"""Getting files from the Hugging Face hub, or from its local cache when the hub is out of reach.

Without network, huggingface_hub retries each request five times with back-off (23 s
per file measured here, several files per model, longer where packets are dropped)
before it gives up. Air-gapped servers are a normal case for Regard, so the cache is
read first, the hub is probed at most once with one short request, and when it cannot
be reached a file missing from the cache fails in seconds.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from huggingface_hub import constants, get_session, hf_hub_download, snapshot_download
from huggingface_hub import try_to_load_from_cache as _cached_path
from huggingface_hub.errors import EntryNotFoundError

PROBE_TIMEOUT_S = 3.0

# Everything in a repo but the weights: configs and tokenizer files are small.
WEIGHT_PATTERNS = ["*.bin", "*.safetensors", "*.pt", "*.pth", "*.npz", "*.msgpack", "*.h5"]


class HubFileMissingError(Exception):
    """A file is neither in the cache nor (when online) on the hub; `where` says where we looked."""

    def __init__(self, where: str, cause: Exception | None = None) -> None:
        super().__init__(where)
        self.where = where
        self.cause = cause


def offline_requested() -> bool:
    """HF_HUB_OFFLINE, read now: huggingface_hub only reads it when first imported."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return constants.HF_HUB_OFFLINE or (value or "").upper() in constants.ENV_VARS_TRUE_VALUES


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """One request to the hub endpoint, no retries; any HTTP answer counts as reachable."""
    if offline_requested():
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:
        return False
    return True


class HubAccess:
    """The hub as seen from this process: its cache first, the network only when needed.

    The hub is probed at most once, and only when a file is missing from the cache, so a
    machine with a filled cache never touches the network.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.cache_dir = Path(cache_dir or constants.HF_HUB_CACHE)

    @cached_property
    def online(self) -> bool:
        return hub_reachable()

    @property
    def state(self) -> str:
        if self.online:
            return f"the hub ({constants.ENDPOINT})"
        reason = "HF_HUB_OFFLINE is set" if offline_requested() else "no connection to the hub"
        return f"the cache only ({reason})"

    def file(self, repo_id: str, filenames: list[str]) -> Path:
        """The first of `filenames` that the cache holds or, online, the hub serves."""
        for filename in filenames:
            cached = _cached_path(repo_id, filename, cache_dir=self.cache_dir)
            if isinstance(cached, str):  # it may also be None or a "known missing" marker
                return Path(cached)
        if not self.online:
            raise HubFileMissingError(self._where(repo_id, filenames))
        last_error: Exception | None = None
        for filename in filenames:
            try:
                return Path(hf_hub_download(repo_id, filename, cache_dir=self.cache_dir))
            except EntryNotFoundError as error:  # try the next name
                last_error = error
            except Exception as error:  # network, auth, disk: no point trying further
                raise HubFileMissingError(self._where(repo_id, filenames), error) from error
        raise HubFileMissingError(self._where(repo_id, filenames), last_error)

    def folder(self, repo_id: str, required_any: list[str]) -> Path:
        """A local copy of a repo without its weights, holding at least one of `required_any`."""
        cached = self._snapshot(repo_id, required_any, local_only=True)
        if isinstance(cached, Path):
            return cached
        if not self.online:
            raise HubFileMissingError(self._where(repo_id, required_any), cached)
        downloaded = self._snapshot(repo_id, required_any, local_only=False)
        if isinstance(downloaded, Path):
            return downloaded
        raise HubFileMissingError(self._where(repo_id, required_any), downloaded)

    def _snapshot(
        self, repo_id: str, required_any: list[str], local_only: bool
    ) -> Path | Exception | None:
        """The snapshot folder if it holds a required file; else the error, or None."""
        try:
            folder = Path(
                snapshot_download(
                    repo_id,
                    cache_dir=self.cache_dir,
                    ignore_patterns=WEIGHT_PATTERNS,
                    local_files_only=local_only,
                )
            )
        except Exception as error:  # not cached, or a network or disk failure
            return error
        return folder if any((folder / name).is_file() for name in required_any) else None

    def _where(self, repo_id: str, filenames: list[str]) -> str:
        return (
            f"hub repo {repo_id!r} (files {', '.join(filenames)}) through {self.state}, "
            f"cache folder {self.cache_dir}"
        )
