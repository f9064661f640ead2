"""Checks shared by the routes."""

from ..errors import BadRequest


def check_k(k: int, max_k: int) -> None:
    if not 1 <= k <= max_k:
        raise BadRequest(
            f"k={k} is out of range: ask for between 1 and {max_k} results", code="k_out_of_range"
        )
