"""One CSV line as text, for exports written (or streamed) a line at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any


def csv_line(values: Sequence[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()
