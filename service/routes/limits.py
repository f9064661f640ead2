"""Checks and parameter types shared by the routes."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote_to_bytes

from fastapi import Request
from pydantic import BeforeValidator

from ..errors import BadRequest

DEFAULT_K = 24


def blank_means(default: int | None) -> BeforeValidator:
    """HTML forms send a field left empty as `k=`: that is a parameter not given."""
    return BeforeValidator(
        lambda value: default if isinstance(value, str) and not value.strip() else value
    )


# How many results: 24 when absent or empty.
Count = Annotated[int, blank_means(DEFAULT_K)]


def check_k(k: int, max_k: int) -> None:
    if not 1 <= k <= max_k:
        raise BadRequest(
            f"k={k} is out of range: ask for between 1 and {max_k} results", code="k_out_of_range"
        )


def _as_text_guess(raw: bytes) -> str:
    """Bytes that are not UTF-8, read as the single-byte encoding they most likely are."""
    try:
        return raw.decode("cp1252")  # what browsers and Windows tools mean by Latin-1
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _not_utf8(query_string: bytes) -> tuple[str, bytes] | None:
    """The first parameter whose percent-escapes are not UTF-8, as (name, raw value)."""
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        raw = unquote_to_bytes(value.replace(b"+", b" "))
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return _as_text_guess(unquote_to_bytes(name)), raw
    return None


def require_utf8_query(request: Request) -> None:
    """Refuse a query string that is not UTF-8 (a Latin-1 "%E9" for "é"): the framework
    would turn each such byte into U+FFFD, and search for that garbage without a word."""
    found = _not_utf8(request.scope.get("query_string", b""))
    if found is None:
        return
    name, raw = found
    utf8 = quote(_as_text_guess(raw), safe="")
    raise BadRequest(
        f"the parameter {name!r} is not UTF-8: percent-encode its text as UTF-8 "
        f"(é as %C3%A9, not Latin-1's %E9); read as Latin-1 it would be {name}={utf8}",
        code="query_not_utf8",
    )
