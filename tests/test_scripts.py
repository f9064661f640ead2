"""The scripts in scripts/: the benchmarks still run (a small run, its figures
well-formed; not timed here: the figures that count come from full runs, recorded in
docs/benchmarks.md), and the demo refuses what it cannot do before starting anything."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_index_shapes_measures_every_shape_of_collection():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_index_shapes"), "--size", "20000",
         "--queries", "20", "--no-lock"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"\| \S", line)]
    named = [row for row in rows if not row.startswith("| collection")]
    shapes = [
        "3,000 separate clusters (bench_search's)",
        "one archive: 300 themes of 40 motifs",
        "no clusters, variances falling as 1 / rank",
    ]
    # Two tables: texts as the probes stand, and texts farther from their images.
    assert [row.split("|")[1].strip() for row in named] == shapes * 2
    far = re.findall(r"\| (\d+): (\d\.\d{3}) \| [\d.]+ ms \| (\d+): (\d\.\d{3}) \|", result.stdout)
    assert len(far) == 3
    for measured, recall, quarter, quarter_recall in far:
        assert int(quarter) >= int(measured) and 0 <= float(recall) <= 1
        assert 0 <= float(quarter_recall) <= 1
    # Each shape: image-like and text-like rows, cells measured with the probes' recall,
    # and recall@10 of new queries with those cells and with a fixed share.
    kinds = re.findall(
        r"\| (image|text)-like \| (\d+) \((\d\.\d{3})\) \| (\d\.\d{3}) \|", result.stdout
    )
    assert len(kinds) == 6
    for _, cells, probes, new in kinds:
        assert int(cells) >= 8 and 0 < float(probes) <= 1 and 0 < float(new) <= 1
    assert "docs/benchmarks.md" not in result.stderr  # written only with --write-docs


def test_the_offline_demo_refuses_the_port_of_its_own_iiif_server():
    result = subprocess.run(
        [str(REPO / "scripts" / "demo"), "--offline", "--port", "8765"],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2
    assert "port 8765 is the offline demo's IIIF test server" in result.stderr
    assert "choose another --port" in result.stderr
