"""What identifies the vectors a model makes, so that a store never mixes two models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fingerprint:
    """A model name, its weights' identity and the vector size.

    `pretrained` is the open_clip tag ("webli"), "sha256:<16 hex>" of a local checkpoint
    file, or "random". Two encoders built from the same weights have the same key.
    """

    model: str
    pretrained: str
    dim: int

    @property
    def key(self) -> str:
        """One string for storage and comparison: "regard-test|sha256:0123abcd…|64"."""
        return f"{self.model}|{self.pretrained}|{self.dim}"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "pretrained": self.pretrained, "dim": self.dim}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            model=str(data["model"]), pretrained=str(data["pretrained"]), dim=int(data["dim"])
        )

    @classmethod
    def from_key(cls, key: str) -> Fingerprint:
        model, pretrained, dim = key.rsplit("|", 2)
        return cls(model=model, pretrained=pretrained, dim=int(dim))

    def __str__(self) -> str:
        return self.key
