"""The scripts in scripts/: the benchmarks still run (a small run, its figures
well-formed; not timed here: the figures that count come from full runs, recorded in
docs/benchmarks.md), and the demo refuses what it cannot do before starting anything."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def bench_embed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_embed"), "--no-lock", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip


def test_bench_embed_measures_a_small_run_and_reports_it_again_from_its_json(tmp_path: Path):
    saved = tmp_path / "run.json"
    run = bench_embed(
        "--models", "regard-test", "--images", "32", "--naive-images", "8", "--rounds", "1",
        "--fast-runtime", "int8", "--workers", "2", "--per-host", "2", "--json", str(saved),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = re.findall(
        r"^\| regard-test \| (\w+) \| 32 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|",
        run.stdout,
        re.M,
    )
    assert [runtime for runtime, *_ in rows] == ["float32", "int8"]
    assert all(float(rate) > 0 for _, *rates in rows for rate in rates)
    assert "| pipeline | 2 download threads, 2 connections per host |" in run.stdout
    assert "(b)/(a) comes to about p / (a + p): regard-test float32" in run.stdout
    again = bench_embed("--from-json", str(saved))
    assert again.returncode == 0, again.stderr
    assert again.stdout == run.stdout


def test_bench_embed_runs_the_pipeline_in_processes_against_a_copied_test_server():
    # As on a GPU: pictures prepared in processes, the test server in several.
    run = bench_embed(
        "--models", "regard-test", "--images", "32", "--naive-images", "8", "--rounds", "1",
        "--fast-runtime", "float32", "--processes", "1", "--server-processes", "2",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "| pipeline | 1 picture process, 4 connections per host, 2 server processes |" in (
        run.stdout
    )
    [row] = re.findall(
        r"^\| regard-test \| float32 \| 32 \| ([\d.]+) \| ([\d.]+) \|", run.stdout, re.M
    )
    assert all(float(rate) > 0 for rate in row)


def test_bench_embed_measures_the_pipeline_alone_and_the_cpu_it_costs_the_main_process():
    run = bench_embed(
        "--pipeline-only", "--models", "regard-test", "--images", "32", "--rounds", "2",
        "--processes", "1",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "32 shape images, 1 picture process, 4 connections per host" in run.stdout
    row = r"^\| regard-test \| ([\d, ]+) \| ([\d, ]+) \| ([\d, ]+) \|$"
    [(rates, cpu, harvest)] = re.findall(row, run.stdout, re.M)
    figures = [figure.split(", ") for figure in (rates, cpu, harvest)]
    assert [len(each) for each in figures] == [2, 2, 2]  # a round each
    assert all(int(figure) > 0 for each in figures for figure in each)


@pytest.mark.parametrize("harvest", [[], ["--harvest-in-main"]])
def test_bench_embed_measures_the_pipeline_over_a_manifest_per_picture(harvest: list[str]):
    run = bench_embed(
        "--pipeline-only", "--models", "regard-test", "--images", "32", "--rounds", "1",
        "--processes", "1", "--layout", "objects", *harvest,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "a collection of one manifest per picture" in run.stdout
    in_main = "manifests read in the main process" in run.stdout
    assert in_main == bool(harvest)
    row = r"^\| regard-test \| (\d+) \| (\d+) \| (\d+|—) \|$"
    [(rate, cpu, harvest)] = re.findall(row, run.stdout, re.M)
    assert int(rate) > 0 and int(cpu) > 0
    # The manifests' process's own CPU, where there is one.
    assert harvest == "—" if in_main else int(harvest) > 0


def test_bench_embed_reports_a_saved_gpu_run_without_the_cpus_sharing():
    result = bench_embed("--from-json", str(REPO / "docs" / "runs" / "embed-h100-2026-11-27.json"))
    assert result.returncode == 0, result.stderr
    assert "| device | cuda |" in result.stdout
    assert "| ViT-B-32-SigLIP2-256 * | float16 | 128 |" in result.stdout
    # The pipeline and the model do not share a GPU's time: no p / (a + p) there.
    assert "the pipeline and not the model sets the pace." in result.stdout
    assert "p / (a + p)" not in result.stdout


def test_a_gpus_or_an_amx_cpus_run_goes_to_its_own_docs_section(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from embed_report import docs_section, ran_where

    cpu = {"cpus": "2", "cpu": "Xeon", "ram": "24 GiB", "python": "3.11.7", "device": "cpu"}
    gpu = {**cpu, "cpus": "16", "device": "cuda", "gpu": "NVIDIA H100 80GB HBM3"}
    amx = {**cpu, "cpus": "16", "flags": "avx512f amx_tile amx_bf16", "gpu": "NVIDIA H100"}
    assert [docs_section(info)[0] for info in (cpu, gpu, amx)] == [
        "Embedding",
        "Embedding on a GPU",
        "Embedding on a CPU with AMX",
    ]
    assert ran_where(cpu) == "2 CPU cores (Xeon), 24 GiB RAM, Python 3.11.7"
    # The GPU is named where it ran the model, not where it sat idle.
    assert ran_where(gpu).endswith("Python 3.11.7, NVIDIA H100 80GB HBM3")
    assert ran_where(amx).endswith("Python 3.11.7")


def test_the_offline_demo_refuses_the_port_of_its_own_iiif_server():
    result = subprocess.run(
        [str(REPO / "scripts" / "demo"), "--offline", "--port", "8765"],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2
    assert "port 8765 is the offline demo's IIIF test server" in result.stderr
    assert "choose another --port" in result.stderr


def small_bench(script: str, size: int, workdir: Path) -> subprocess.CompletedProcess[str]:
    """A benchmark of scripts/ run at one small size in `workdir`; its exit checked."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), "--sizes", str(size),
         "--workdir", str(workdir), "--no-lock"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def test_bench_map_measures_a_small_map_and_umap_on_every_item(tmp_path: Path):
    result = small_bench("bench_map", 1500, tmp_path)
    row = re.search(
        r"\| 1,500 \| 1,500 \| (\d+) \| \d+ s \| \d+ s \| \d+ s \| [\d.]+ GiB "
        r"\| (\d\.\d\d) \(1\.00\) \| [\d.]+ s \| \d+ ms \| \d+ ms \|",
        result.stdout,
    )
    assert row, result.stdout
    assert int(row.group(1)) == 19  # clusters: about sqrt(1500 / 4)
    assert 10 / 1500 < float(row.group(2)) <= 1  # neighbours kept, better than chance
    compared = re.search(r"overlap@10 (\d\.\d\d), against", result.stdout)
    assert compared and 0 < float(compared.group(1)) <= 1
    assert "docs/benchmarks.md" not in result.stderr  # written only with --write-docs


def test_bench_records_times_each_kind_of_query(tmp_path: Path):
    result = small_bench("bench_records", 3000, tmp_path)
    assert "3,000 items: records filled in" in result.stdout
    found = dict(re.findall(r"^  (.+?) {2,}(\S.*?)  p50 [\d.]+ ms", result.stdout, re.M))
    assert int(found["an inventory number typed with its space (RY n)"]) >= 1
    assert found["a word every record holds (Royère)"].strip() == "3,000"
    assert found["words none holds (the search benchmark's)"].strip() == "0"
