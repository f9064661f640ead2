"""What scripts/bench_embed reports: its figures' shapes (Result, InitCheck), the goals
they are held to (issue 4), the markdown of a run, and the reading of each machine's
figures that follows them in docs/benchmarks.md. Measuring stays in bench_embed; this
module only turns figures, measured now or saved with --json, into text."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchlib import machine_line

from models.fidelity import LOAD_CHECK_MIN_COSINE

SHAPES_PER_IMAGE_SET = 16  # the shapes manifest holds 16 pictures per `per_pair`
GOAL_OVERLAP, GOAL_FLOAT32_SPEEDUP, GOAL_FAST_SPEEDUP = 0.9, 1.8, 3.0  # issue 4
GOAL_COSINE, GOAL_OVERLAP_TOP10 = 0.99, 0.9
# Text queries for the text-to-image overlap: the shapes' own words, and a curator's.
QUERIES = [
    *(
        f"a {c} {s}"
        for c in ("red", "blue", "green", "yellow")
        for s in ("circle", "square", "triangle", "star")
    ),
    *(
        f"un {s} {c}"
        for s, c in (
            ("cercle", "rouge"),
            ("carré", "bleu"),
            ("triangle", "vert"),
            ("étoile", "jaune"),
        )
    ),
    "fauteuil en fer forgé",
    "wrought-iron armchair",
    "lampe de bureau",
    "a standing lamp",
    "dessin d'un salon",
    "sketch of a living room",
    "table basse",
    "a coffee table",
    "chaise longue",
    "a bookcase",
    "miroir",
    "a wall light",
    "tapis",
    "a dining room",
    "croquis au crayon",
    "a watercolour drawing",
]


@dataclass
class Result:
    """One model in one runtime: images/s per round of (a) the encoder alone, (b) the
    whole pipeline, (c) the naive loop and (p) the pipeline with no model, and how close
    its vectors are to float32's."""

    model: str
    runtime: str
    settings: dict[str, Any]
    alone: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)  # the pipeline with no model
    fidelity: dict[str, float] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(getattr(self, name))

    def ceiling_figure(self) -> float | None:
        return self.median("ceiling") if self.ceiling else None  # saved before it was measured


@dataclass
class InitCheck:
    """int8 against float32 for one random initialisation, and the runtime the load chose."""

    model: str
    seed: int
    min_cosine: float
    mean_cosine: float
    top10_overlap: float
    chosen: str  # the runtime the encoder's check at load gave
    probe_cosine: float | None  # the check's worst probe cosine (None: not reported)

    @property
    def meets_bar(self) -> bool:
        return self.min_cosine >= GOAL_COSINE and self.top10_overlap >= GOAL_OVERLAP_TOP10


# --- the report ---------------------------------------------------------------------------

EXPLAINED = """
What the encoder keeps from these figures (models/runtime.py gives each reason): one torch
thread per physical core (capped by a cgroup quota); batches of 32 on CPU, 128 on CUDA;
inference_mode; the int8 runtime by default on CPU for the architectures measured here,
after a check against float32 on probe pictures at every load (its vectors are within the
bar of float32's, so the runtime is not part of the fingerprint), bfloat16 instead for
SigLIP2 where the CPU has AMX (the section "Embedding on a CPU with AMX"); float16
autocast on CUDA, with pictures prepared in processes there (the section "Embedding on a
GPU"); texts always in float32; glibc told to keep freed memory rather than map
each 10-20 MB tensor afresh (those page faults cost 15 to 30 % here). Preprocessing is
open_clip's, bit for bit, with its ToTensor and Normalize steps done by a table look-up in
numpy (models/preprocess.py): in the download threads, torch's own operations started
OpenMP threads that competed with the model. Left out, as they did not win here or not
enough: channels_last, bfloat16 autocast (avx512_bf16 without AMX), torch.compile (with
frozen weights 3 to 9 % more in float32, see the settings; for int8 nothing, one run: 70.6
against 73.9 images/s; it costs 12 to 22 s of compiling per batch shape, 550 MB more
memory for SigLIP2's 360 MB tower and a C++ compiler on the server, while float32 only
runs where int8 is refused or not wanted), ONNX Runtime and OpenVINO (one run, ViT-B-32,
batch 32, before the allocator setting: torch float32 27.6, ORT float32 28.1, OpenVINO
float32 30.5, ORT int8 51.0, torch int8 60.8 images/s; OpenVINO's default bfloat16 18.0).

Where (b)/(a) falls short of 0.9 (the int8 towers on 2 cores), the pipeline's own work
shares the two cores with the model: per image about 0.5 ms of CPU to fetch (httpx), 0.3
ms to decode, 0.3 ms to preprocess, and the test server's answer. Leaving parts out in
turn (ViT-B-32 int8, 512 images, one run each): with pictures neither fetched, decoded nor
preprocessed, 0.97; fetched only, 0.93; all of it, 0.86 to 0.89. The faster the tower, the
larger that share (float32: 0.95). (p) measures that work as a whole: 350 to 550 images/s
here from run to run, so that at a = 72 (b)/(a) comes to about 0.83 to 0.88, and 0.9 would
need the pipeline 1.2 to 1.9 times cheaper. Where its time goes (one download thread, no
model, sampled with py-spy): fetching 43 % (httpx, and waiting on the server),
preprocessing 19 %, decoding 16 %, reading the manifest 6 %, writing vectors 2 %. Tried,
and within the noise of these runs: 2 or 4 download threads instead of 8, a lower priority
for them (nice, SCHED_BATCH), a smaller GOMP_SPINCOUNT, a shorter GIL switch interval,
uint8 pictures given to a tower whose first layer does the normalisation, and each batch
split in two halves embedded by two threads of one torch thread each (0 to 5 % more in (a)
and (b) alike). Slower: the model in a thread of its own while the next batch is gathered
(0.80 to 0.83; the gathering then competes with the model for the two cores). Across a
run, the model waits on the pipeline less than 1 % of the time: what (b) loses is the
cores' time, not waiting. Measured in one run (ViT-B-32 int8, 512 images): the model's
batches take 7.2 to 7.4 s in (b) against 6.4 to 6.7 s in (a), while the download threads
use 0.9 to 1.1 s of CPU and the test server 0.1 s; the first picture is ready 0.1 s after
the start. Also tried, no better: preparing pictures in worker processes, first through
a pipe (0.85 against 0.90 with threads), then as on a GPU (`--processes 2`, the pixels
through a mapped file; 2026-11-27, on a slower 2-core AMD EPYC: int8 tower 50 to 55
pictures a second, 2 runs of 2 rounds each way): (b)/(a) 0.87-1.00 against 0.90-1.01 with
threads, while (p) doubled (704-1,359 against 444-577): the model, not the pipeline, takes
the cores' time, and each process holds a few hundred MB; a TorchScript-traced tower, which needs
no GIL between its operations ((a) 3 % faster, the same (b)), decoding a batch's pictures
in a burst on two threads between batches, 3 or 4 torch threads; http.client for the
picture bytes (0.11 against 0.47 ms of CPU per request; urllib3 0.26) gained 2 %, within
the noise, and would mean redoing httpx's proxies, TLS and redirects.
"""

GPU_EXPLAINED = """
Measured on a lent machine and reported here from the saved run
(docs/runs/embed-h100-processes-2026-11-27.json, with --from-json): ViT-B-32 only, 2 rounds,
as the lent time allowed.

On the GPU the model does not set the pace: the pipeline does. In one Python process, as
in the earlier run on this kind of machine (docs/runs/embed-h100-2026-11-27.json, 1,024
pictures, 8 download threads), (p) came to 260-390 pictures a second and (b) to 208-350,
(b)/(a) 0.05 to 0.12: fetching, decoding and preprocessing held the interpreter lock. The
indexer now prepares pictures in processes on a GPU (`--processes`, by default one per core
but two, at most 12: indexer.picture_processes), and the test server answers from 4
processes (`--server-processes`; one answers about 800 requests a second). (p) rose to
1,912-2,096 pictures a second, (b) to 1,442-1,528 in float32 and 1,675-1,881 in float16:
(b)/(a) 0.46 and 0.26, still short of 0.9. (b)/(c) is 8 to 10: the naive loop pays every
layer's launches for each single picture.

What bounds it now is the main process: it harvests the manifests (each canvas's JSON and
record words into SQLite), hands the pictures out and takes them back (a task per 8
pictures, the pixels through a mapped file), stacks each batch and writes its vectors. At
(p) 1,577-2,801 pictures a second it used 385-524 µs of CPU a picture (a scratch
measure, not a script of the project): about one core. The first version of the processes,
a task per picture whose pixels were copied out of their place, ran (p) at 1,294-1,461 with
both models (docs/runs/embed-h100-processes-first-2026-11-27.json: (b) ViT-B-32 1,051 and
1,216, ViT-B-32-SigLIP2-256 1,080 and 1,185; (b)/(a) 0.20 to 0.44). By picture processes,
(p) in the same run of the final code (3 runs each, 2,048 pictures): 8 processes 1,265-1,989,
12 1,865-2,254, 14 1,911-2,597; with the test server in 8 processes, 8 picture processes
1,387-1,898. A folder of 1,024 JPEGs of 1600 x 1200 on local disk (no server): threads
797-817, 12 processes 1,192-1,952, 14 1,298-2,140.

Since that run, seven changes for that main process, not yet measured on a GPU.
`scripts/bench_embed --pipeline-only` measures (p) and the main process's CPU a picture on
any machine (and the harvest process's, where one reads the manifests). First, Python's
garbage collector: torch and the model leave about 430,000 objects in the process, and
each full pass walked them all (on 2 cores, one such pass every 2,000 pictures or so, 130
to 150 µs a picture in a scratch measure). A run now leaves them out of its passes
(indexer.heap). On 2 cores (AMD EPYC, 2 picture processes, 2,048 pictures, 6 rounds, the
code before and after in turn, twice each), rounds 2 to 6 went from 391-553 µs a picture
(median 470) to 369-434 (median 388), and (p) from 824-1,219 to 970-1,144 pictures a
second. Second, the manifests are read and saved in a process of their own, beside the
picture processes (indexer.harvest_process): a museum often publishes a manifest per
object, and for such a collection (`--layout objects`: 2,048 one-picture manifests) the
main process spent 1,593-1,988 µs of CPU a picture, most of it fetching (httpx) and saving
each manifest, against 304-464 for one manifest of every picture. By `scripts/bench_embed
--pipeline-only` on 2 cores (AMD EPYC, 2 picture processes, 2,048 pictures, 4 rounds, each
way in turn): one manifest a picture, manifests read in the main process
(`--harvest-in-main`) (p) 364-523 pictures a second and 1,593-1,988 µs a picture, in their
own process (p) 538-573 and 288-373 µs; one manifest of every picture, 883-1,335 and
304-464 µs, against 819-985 and 242-375 µs. On 2 cores the one more process takes the
cores' time from the others; on a GPU's many cores, the main process's time is what bounds
(p). Third, the pictures' places leaked: each group's future and its task held each other,
so that a group's pictures kept their places in the mapped file until the collector's next
full pass, which since the first change comes seldom; the places ran out and 40 % of the
pictures came back through the pipe instead (150 KB each, read by the main process).
Fixed, on 2 cores (2 picture processes, 2,048 pictures, one manifest of every picture, 6
rounds, the code before and after in turn, twice each): (p) from 651-908 to 1,055-1,322
pictures a second, and the main process's CPU from 284-456 to 177-229 µs a picture.
Fourth, the main process's writes waited on the manifests' process: SQLite's own wait for
a lock sleeps 1, 2, 5, 10 ms and more at a time, and beside a process saving hundreds of
manifests a second the writes of vectors waited 3 ms each on average, up to 104 ms (one
manifest a picture, 2 cores, a scratch measure). A write now asks again after 50 µs,
doubling up to 2 ms (there 1.8 ms on average, at most 25 ms), and the main process queues
the manifests saved meanwhile in one query rather than one each. On 2 cores, where the
manifests' process is the bound, (p) over a manifest a picture did not change (379-600
pictures a second against 386-600, 2 runs of 6 rounds each way). Fifth, a picture process
takes 16 pictures a task rather than 8, which halves the executor's work a picture: on 2
cores the main process's CPU went from 188-250 to 154-202 µs a picture (a scratch measure,
6 runs each way; 32 gave 136-174, with twice the places in memory and a slow server's
first batch later still). Sixth, places are taken in turn round the file, so that a
batch's pictures mostly lie one after another and are embedded where they lie rather than
copied into a batch (95 % of the batches on 2 cores): 1.6 to 2 µs a picture instead of 17
(batches of 32) to 33 (128, a GPU's), measured alone. The last four together, on 2 cores
(one manifest of every picture, 2 runs of 6 rounds each way, in turn): (p) from 727-1,171
to 1,085-1,395 pictures a second, the main process's CPU from 209-391 to 140-183 µs a
picture. Seventh, each batch's vectors are written to the store in a thread of their own
(indexer.vector_writer), while the main thread hands the next batch to the model: SQLite's
work lets go of the interpreter lock, and writing had taken about 40 % of the main
thread's time. On 2 cores (2 picture processes, 4,096 pictures, one manifest of every
picture, 3 rounds, 2 runs each way in turn, the main thread's own CPU read from /proc):
107-120 µs a picture before, 59-73 after; (p) from 1,043-1,314 to 1,260-1,553 pictures a
second. By `bench_embed --pipeline-only` (2,048 pictures, 3 rounds, twice each way in
turn) the whole process's CPU a picture did not change (142-165 µs against 142-163): the
work moved to another thread, it did not shrink; nor did (p) there (1,152-1,390 against
1,248-1,412), where the two cores, not the main thread, are the bound.
Further steps, not taken: batches assembled by the workers, so that the main process
handles a batch rather than a picture; decoding on the GPU (nvjpeg through
torchvision.io.decode_jpeg took 8,250 pictures a second in batches of 128 in a scratch
run; its resize is not open_clip's bit for bit). The process that reads the manifests
spends on each one-picture manifest about what the main process did (on 2 cores, by a
scratch measure of threads' CPU: 900 to 1,000 µs fetching and reading it, most of it in
httpx; 320 to 340 saving it, since the manifests read while others were being saved are
saved together, one commit for them all, against 470 to 480 with a commit each): past
about 750 such manifests a second, a collection of a manifest per object is bound by it.
Saving several at once also means a message to the main process for several: over a
manifest a picture (`--layout objects --processes 2`, 2,048 pictures, 3 rounds, twice each
way in turn, before this grouping and the seventh change, and after), (p) went from
503-639 to 587-785 pictures a second, and the main process's CPU from 243-322 to 154-184
µs a picture. From a museum's image server, its answer times and 4 connections bound a
harvest well below these rates: the processes matter where the pictures come fast, from
the museum's own disk or image server. At 1,500 pictures a second, 500,000 images take
under 6 minutes.

Settings (the earlier run, tower alone on random tensors; its tables:
`scripts/bench_embed --from-json docs/runs/embed-h100-2026-11-27.json`): float16 at batch
32 is no faster than float32 (ViT-B-32 2,789 against 3,282; SigLIP2 3,001 against 2,697):
at that size the launches, not the products, take the time; from batch 64 up it is 1.3 to
3.3 times as fast (batch 128: 10,238 and 11,183 pictures a second). Batch 128 stays
(models.runtime): the tower doubles again at 256, but nothing upstream could use it. Left
out: torch.compile (frozen weights, float32, batch 32: +5 % and +6 % for 22 to 31 s of
compiling), channels_last (+1 % and +8 %), bfloat16 autocast (timed at batch 32 only, where
float16 is no faster either: -13 % and +6 %). TF32 for float32's products (torch warns it
is off) was not tried: float16 is the runtime there. float16's fidelity (random weights):
worst cosine 1.0000 to four places, top-10 neighbours 0.994 to 0.998.
"""

AMX_EXPLAINED = """
Measured on a lent machine and reported here from the saved run
(docs/runs/embed-amx-cpu-2026-11-27.json, with --from-json).

This CPU has AMX, matrix units for bfloat16 (the same 16-core Xeon as the GPU section, its
GPU unused). For ViT-B-32-SigLIP2-256, bfloat16 autocast runs the tower alone at 1.9 times
float32's speed (random tensors, batch 32: 171 against 92 images/s; int8 139) and the whole
pipeline at 111 against 65, within the fidelity bar (worst cosine 1.0000, top-10 overlap
0.995). For ViT-B-32 it runs at half float32's speed (tower alone 47 against 101; int8
186); why is not established (its open_clip tower goes through torch's MultiheadAttention,
SigLIP2's timm tower through scaled_dot_product_attention). So `auto` takes bfloat16 for
SigLIP2 on a CPU with AMX (models.runtime.BF16_WINS_ON_AMX), then int8 if bfloat16 failed
its check at load, and int8 for ViT-B-32 as elsewhere. int8's whole pipeline was not
measured on this machine (the run compared bfloat16 with float32). On 16 cores too,
(b)/(a) stays at 0.72-0.82: (p) was 313-485 pictures a second, in one process as on the
GPU then. Pictures prepared in processes (`--processes`, which doubled (p) on 2 cores and
raised it more than fivefold on the GPU) were not measured on this CPU; the default there
stays threads.
"""


def markdown(
    info: dict[str, str],
    results: list[Result],
    notes: dict[str, str],
    settings: list[tuple[str, list[tuple[str, float]]]],
    images: int,
    naive_images: int,
    rounds: int,
    checks: Sequence[InitCheck] = (),
) -> str:
    weights = info.get("weights", "random")  # runs saved before --pretrained were random
    lines = [
        f"`scripts/bench_embed` on {info['date']}: {images} shape images served as JPEG by "
        f"the local IIIF test server ((c) on the first {min(images, naive_images)}), "
        f"median of {rounds} rounds; weights: {weights}.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in info.items() if key not in ("date", "weights")),
        "",
        "Images per second: (a) encoder alone on ready tensors, (b) the whole pipeline "
        "(`run_index`), (c) naive loop (one image at a time, open_clip as it comes, float32).",
        "",
        "| model | runtime | batch | (a) | (b) | (c) | (b)/(a) | (b)/(c) | "
        "min cos | mean cos | top-10 overlap | text top-10 overlap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a, b, c = r.median("alone"), r.median("whole"), r.median("naive")
        f = r.fidelity
        lines.append(
            f"| {r.model}{' *' if notes.get(r.model) else ''} | {r.runtime} | "
            f"{r.settings['batch_size']} | {a:.1f} | {b:.1f} | {c:.1f} | {b / a:.2f} | "
            f"{b / c:.2f} | {f['min_cosine']:.4f} | {f['mean_cosine']:.4f} | "
            f"{f['top10_overlap']:.3f} | {_figure(f.get('text_top10_overlap'))} |"
        )
    lines += ceiling_markdown(results)
    lines += [
        "",
        "Goals (issue 4): (b)/(a) at least 0.9; (b)/(c) at least 1.8 in float32 and at "
        "least 3 with the fast runtime; fast runtime within cosine 0.99 and top-10 "
        "overlap 0.9 of float32.",
        "",
        "Text top-10 overlap (not a goal): the share of each text query's 10 best images "
        f"found with both runtimes' image vectors ({len(QUERIES)} queries in English and "
        f"French, encoded in float32; weights: {weights}). With {images // SHAPES_PER_IMAGE_SET} "
        "pictures of each shape and colour, most of what differs is the order among equally "
        "good pictures: on the trained test model (one run, 512 pictures), int8 gave 0.88 "
        "and random noise as large as int8's error 0.88 too, while int8 and float32 found "
        "the same right pictures for every caption (tests/test_runtime.py checks that).",
        "",
        goals_verdict(results, dict(settings)),
    ]
    if checks:
        lines += inits_markdown(checks, images)
    for model, note in notes.items():
        if note:
            lines += ["", f"\\* {model}: {note}."]
    for model, rows in settings:
        lines += [
            "",
            f"Settings, {model} image tower alone on random tensors (images/s, median of "
            f"{rounds}):",
            "",
            "| setting | images/s |",
            "|---|---|",
            *(f"| {label} | {rate:.1f} |" for label, rate in rows),
        ]
    return "\n".join(lines) + "\n"


def ceiling_markdown(results: Sequence[Result]) -> list[str]:
    """The pipeline's own ceiling (p) per model, where the run measured it, and what it
    predicts for (b)/(a) where the pipeline and the model take turns on the same cores:
    each image then costs 1/a + 1/p seconds, so (b)/(a) = p / (a + p)."""
    measured = [(r, p) for r in results if (p := r.ceiling_figure()) is not None]
    if not measured:
        return []
    ceilings = {r.model: f"{r.model} {p:.0f}" for r, p in measured}
    shares = [
        f"{r.model} {r.runtime} {p / (r.median('alone') + p):.2f}"
        for r, p in measured
        if r.settings.get("device", "cpu") == "cpu"  # on a GPU the two do not share
    ]
    shared = (
        " On a CPU the pipeline and the model share the cores, so each image costs the time "
        f"of both and (b)/(a) comes to about p / (a + p): {', '.join(shares)}."
    )
    return [
        "",
        "The pipeline with no model behind it, (p): `run_index` fetching, decoding, "
        f"preprocessing and writing zero vectors, images/s: {', '.join(ceilings.values())}. "
        "It is the most (b) can reach on this machine whatever the device: where (a) comes "
        "near it, as on a GPU, the pipeline and not the model sets the pace."
        + (shared if shares else ""),
    ]


def goals_verdict(results: list[Result], settings: dict[str, list[tuple[str, float]]]) -> str:
    """Which goals the figures meet, and for a float32 batching miss, the tower's own bound."""
    missed = []
    for r in results:
        a, b, c = r.median("alone"), r.median("whole"), r.median("naive")
        what = f"{r.model} {r.runtime}"
        if b / a < GOAL_OVERLAP:
            missed.append(f"{what}: (b)/(a) {b / a:.2f}")
        speed_goal = GOAL_FLOAT32_SPEEDUP if r.runtime == "float32" else GOAL_FAST_SPEEDUP
        if b / c < speed_goal:
            bound = r.runtime == "float32" and _batching_bound(settings.get(r.model, []))
            why = ""
            if bound:
                why = (
                    f" (the float32 tower alone is {bound:.2f} times faster in batches of 32 "
                    "than one image at a time"
                    + (": batching alone cannot reach the goal)" if bound < speed_goal else ")")
                )
            missed.append(f"{what}: (b)/(c) {b / c:.2f}{why}")
        if r.runtime != "float32":
            f = r.fidelity
            if f["min_cosine"] < GOAL_COSINE or f["top10_overlap"] < GOAL_OVERLAP_TOP10:
                missed.append(f"{what}: fidelity")
    if not missed:
        return "**All goals met.**"
    return "**Missed:** " + "; ".join(missed) + ". All other goals met."


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"  # runs saved before it was measured


def _batching_bound(rows: list[tuple[str, float]]) -> float | None:
    rates = dict(rows)
    one, batched = rates.get(setting_label(1)), rates.get(setting_label(32))
    return batched / one if one and batched else None


def setting_label(batch: int) -> str:
    """The settings table's row for float32 at `batch`, as bench_settings names it."""
    return f"float32, batch {batch}, inference_mode"


def inits_markdown(checks: Sequence[InitCheck], images: int) -> list[str]:
    seeds = sorted({c.seed for c in checks})
    lines = [
        "",
        f"int8 over random initialisations (seeds {seeds[0]} to {seeds[-1]}; the rows above "
        f"are seed 0): the {images} pictures' vectors against float32's, and the runtime "
        f"that the encoder's check at load (worst cosine on its probe pictures at least "
        f"{LOAD_CHECK_MIN_COSINE}) chose; where it chose float32, the figures are those "
        "int8 would have given.",
        "",
        "| model | seed | min cos | mean cos | top-10 overlap | probe cosine | runs in |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        probe = "-" if c.probe_cosine is None else f"{c.probe_cosine:.4f}"
        lines.append(
            f"| {c.model} | {c.seed} | {c.min_cosine:.4f} | {c.mean_cosine:.4f} | "
            f"{c.top10_overlap:.3f} | {probe} | {c.chosen} |"
        )
    let_through = [c for c in checks if c.chosen == "int8" and not c.meets_bar]
    turned_away = [c for c in checks if c.chosen != "int8" and c.meets_bar]
    verdict = (
        "Every initialisation the check let run in int8 meets the bar (cosine "
        f"{GOAL_COSINE}, top-10 overlap {GOAL_OVERLAP_TOP10})."
        if not let_through
        else "**The check let int8 run where it misses the bar: "
        + ", ".join(f"{c.model} seed {c.seed}" for c in let_through)
        + ".**"
    )
    if turned_away:
        verdict += (
            " It kept float32 for some that would have met it: "
            + ", ".join(f"{c.model} seed {c.seed}" for c in turned_away)
            + f" (its bar, {LOAD_CHECK_MIN_COSINE} on the probe pictures, is the stricter)."
        )
    return lines + [
        "",
        verdict + " How closely int8 keeps to float32 depends on the weights, so random "
        "ones say nothing certain of trained ones: with them too, this check decides at "
        "every load, and `regard index` says which runtime it got.",
    ]


def ran_where(info: dict[str, str]) -> str:
    """The machine a run's figures come from, in the words of benchlib.machine()."""
    where = machine_line(info["cpus"], info["cpu"], info["ram"], info["python"])
    if info.get("device", "").startswith("cuda") and "gpu" in info:
        where += f", {info['gpu']}"
    return where


def docs_section(info: dict[str, str]) -> tuple[str, str]:
    """The section of docs/benchmarks.md a run belongs to, and what follows its figures
    there: a GPU's and an AMX CPU's figures sit beside the reference CPU's, not in their
    place."""
    if info.get("device", "").startswith("cuda"):
        return "Embedding on a GPU", GPU_EXPLAINED
    if "amx_bf16" in info.get("flags", "").split():
        return "Embedding on a CPU with AMX", AMX_EXPLAINED
    return "Embedding", EXPLAINED
