"""Decode benchmark: the serving engine against the original app's approach and PyTorch, in one process.

    .venv/bin/python -m bench.decode         # builds artifacts/bench-model once (~2 min), then ~5 min

A DistilGPT2-SHAPED model (6 layers, 768 wide, 12 heads, GPT-2 vocabulary) with seeded random
weights, so the numbers are about speed only. Greedy decoding of 64 new tokens (batch 1) after
prompts of 64 and 400 tokens, one intra-op thread everywhere:
  (a) the original app: int8 ONNX exported WITHOUT a cache, re-running the last 50 tokens per token
  (b) transformers fp32 `generate` (PyTorch, its own KV cache)
  (c) this engine, fp32 ONNX with the KV cache
  (d) this engine, int8 ONNX with the KV cache (what ships); (d+s) the same with default sampling
Memory is the growth of the process's peak resident set (VmHWM, reset through /proc/self/clear_refs
before each approach) over its resident set before loading that approach's model: model + run.
Each approach is also set against its physical floor, measured in the same run between its repeats
(bench/hardware_floor.py): reading its weights once per token at this machine's memory bandwidth,
and its matmul arithmetic per token at this machine's int8 or fp32 matmul throughput. Per-token
times are given as the best and the median of the interleaved repeats; best / floor is comparable
across days and hosts, where a ratio between a memory-bound and an arithmetic-bound approach is not.
Then the sampler alone against a full-sort sampler, and 1 vs 2 intra-op threads with and without
a busy-loop process taking one core. bench/prefill.py times the prompt pass alone.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub, which reads it once

import numpy as np
import onnxruntime as ort
import torch

from backend.engine import Engine, GenerationParams, TokenEvent
from bench import hardware_floor
from bench.bench_model import PROMPT_TOKENS, build_models, prompts, shipped_activations, shipped_variant
from bench.sampler import sampler_table

NEW_TOKENS = 64
WINDOW = 50  # the original app re-ran this many trailing tokens for every new token
REPEATS = 7  # runs per cell, round-robin over approaches; best and median are reported
EOS = 50256


class PeakMemory:
    """Peak RSS growth in MiB (tracemalloc misses onnxruntime's and torch's native allocations)."""

    @staticmethod
    def _status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
        raise KeyError(field)

    def __enter__(self):
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current VmRSS
        self.start = self._status("VmRSS")
        return self

    def __exit__(self, *exc):
        self.mib = (self._status("VmHWM") - self.start) / 1024


def summarise(stamps: list[list[float]], tokens: list[int]) -> dict:
    """stamps: per run, [start, first token, second token, ...] in seconds. Each run's per-token
    time is the median gap between its tokens; the best and the median run are reported."""
    ttft = statistics.median((s[1] - s[0]) * 1000 for s in stamps)
    per_run = [statistics.median(np.diff(s[1:]) * 1000) for s in stamps]
    per_token, best = statistics.median(per_run), min(per_run)
    return {
        "ttft_ms": ttft,
        "per_token_ms": per_token,
        "best_per_token_ms": best,
        "tokens_per_s": 1000 / best,
        "tokens": min(tokens),
    }


def run_original(session: ort.InferenceSession, prompt_ids: list[int]) -> tuple[list[float], int]:
    names = {i.name for i in session.get_inputs()}
    ids, stamps = [EOS, *prompt_ids], [time.perf_counter()]
    for _ in range(NEW_TOKENS):
        window = np.array([ids[-WINDOW:]], dtype=np.int64)  # [1, <=50]
        feed = {"input_ids": window, "attention_mask": np.ones_like(window)}
        if "position_ids" in names:
            feed["position_ids"] = np.arange(window.shape[1], dtype=np.int64)[None, :]
        logits = session.run(["logits"], feed)[0]  # [1, seq, vocab]
        ids.append(int(np.argmax(logits[0, -1])))
        stamps.append(time.perf_counter())
    return stamps, NEW_TOKENS


def make_session(model_path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class Stamps:
    """A transformers streamer that records when each token arrives (the first put is the prompt)."""

    def __init__(self):
        self.times = [time.perf_counter()]

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


def run_torch(model, prompt_ids: list[int]) -> tuple[list[float], int]:
    streamer = Stamps()
    with torch.no_grad():
        out = model.generate(
            torch.tensor([[EOS, *prompt_ids]]),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            pad_token_id=EOS,
            streamer=streamer,
        )
    stamps = [streamer.times[0], *streamer.times[2:]]  # drop the prompt's put
    return stamps, out.shape[1] - len(prompt_ids) - 1


def run_engine(engine: Engine, text: str, params: GenerationParams) -> tuple[list[float], int]:
    stamps, count = [time.perf_counter()], 0
    for item in engine.stream(text, params):
        if isinstance(item, TokenEvent):
            stamps.append(time.perf_counter())
            count += 1
    return stamps, count


def decode_table(paths: dict[str, Path], texts: dict[int, str], ids: dict[int, list[int]]) -> None:
    from transformers import GPT2LMHeadModel

    greedy = GenerationParams(max_new_tokens=NEW_TOKENS, temperature=0.0)
    sampled = GenerationParams(max_new_tokens=NEW_TOKENS, seed=0)  # defaults: temperature 0.8, top_p 0.95
    approaches = {
        "(a) original: int8, no cache, last 50 tokens": (
            lambda: make_session(paths["nocache-int8"] / "model.onnx", 1),
            lambda m, n: run_original(m, ids[n]),
        ),
        "(b) transformers fp32 generate": (
            lambda: GPT2LMHeadModel.from_pretrained(paths["hf"]).eval(),
            lambda m, n: run_torch(m, ids[n]),
        ),
        "(c) engine fp32 + KV cache": (
            lambda: Engine.load(paths["fp32"]),
            lambda m, n: run_engine(m, texts[n], greedy),
        ),
        "(d) engine int8 + KV cache": (
            lambda: Engine.load(paths["int8"]),
            lambda m, n: run_engine(m, texts[n], greedy),
        ),
        "(d+s) (d) sampling T=0.8, top_p=0.95": (
            lambda: Engine.load(paths["int8"]),
            lambda m, n: run_engine(m, texts[n], sampled),
        ),
    }
    models, memory = {}, {}
    for label, (load, run) in approaches.items():
        with PeakMemory() as peak:
            models[label] = load()
            run(models[label], max(PROMPT_TOKENS))  # warm-up on the longest prompt, inside the peak
        memory[label] = peak.mib
    weights = {label: weight_bytes(paths, label, models[label]) for label in approaches}
    throughput = hardware_floor.MatmulThroughput()
    # Round-robin over approaches, with a sample of the machine's floors after each round, so
    # that load from other processes hits them all alike.
    runs = {(label, n): [] for label in approaches for n in PROMPT_TOKENS}
    floors = []
    for _ in range(REPEATS):
        for n in PROMPT_TOKENS:
            for label, (_, run) in approaches.items():
                runs[label, n].append(run(models[label], n))
        floors.append(hardware_floor.measure(throughput))
    models.clear()
    gc.collect()
    cells = {key: summarise([r[0] for r in value], [r[1] for r in value]) for key, value in runs.items()}
    best_floor = {key: max(f[key] for f in floors) for key in floors[0]}
    hardware_floor.print_floors(floors)
    print_decode(cells, memory, weights, best_floor, model_macs(paths))


def weight_bytes(paths: dict[str, Path], label: str, model) -> int:
    """What one decode step reads: the ONNX file (weights, tied embedding stored once) or the torch parameters."""
    if label.startswith("(b)"):
        return sum(p.numel() * p.element_size() for p in model.parameters())  # tied: counted once
    name = {"(a)": "nocache-int8", "(c)": "fp32"}.get(label.split()[0], "int8")
    return (paths[name] / "model.onnx").stat().st_size


def model_macs(paths: dict[str, Path]) -> int:
    config = json.loads((paths["hf"] / "config.json").read_text())
    return hardware_floor.matmul_macs_per_token(config["n_layer"], config["n_embd"], config["vocab_size"])


def print_decode(cells: dict, memory: dict, weights: dict, floor: dict[str, float], macs: int) -> None:
    print(f"\n### Decode, batch 1, {NEW_TOKENS} new tokens, greedy unless noted, 1 intra-op thread\n")
    print(
        "| approach | prompt tokens | time to first token (ms) | per-token, best (ms) | per-token, median (ms) "
        "| tokens/s (best) | best / (d) best | median / (d) median | weights (MB) | memory floor (ms) "
        "| arithmetic floor (ms) | floor / best | peak RSS growth (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (label, n), cell in cells.items():
        d = cells["(d) engine int8 + KV cache", n]
        # (a) re-runs a 50-token window per token; the others run one token per step.
        ops = 2 * macs * (WINDOW if label.startswith("(a)") else 1)
        gops = floor["int8_gops"] if label.startswith(("(a)", "(d")) else floor["fp32_gops"]
        bound = hardware_floor.floor_ms(weights[label], ops, floor["bandwidth_gbs"], gops)
        fraction = max(bound.values()) / cell["best_per_token_ms"]
        print(
            f"| {label} | {n} | {cell['ttft_ms']:.1f} | {cell['best_per_token_ms']:.2f} | {cell['per_token_ms']:.2f} "
            f"| {cell['tokens_per_s']:.0f} | {cell['best_per_token_ms'] / d['best_per_token_ms']:.2f}x "
            f"| {cell['per_token_ms'] / d['per_token_ms']:.2f}x | {weights[label] / 1e6:.0f} "
            f"| {bound['memory_ms']:.2f} "
            f"| {bound['arithmetic_ms']:.2f} | {fraction:.2f} | {memory[label]:.0f} |"
        )


def threads_table(paths: dict[str, Path], text: str) -> None:
    """1 vs 2 intra-op threads, alternating runs, without and with a busy loop on one core."""
    greedy = GenerationParams(max_new_tokens=NEW_TOKENS, temperature=0.0)
    engines = {threads: Engine.load(paths["int8"], intra_op_threads=threads) for threads in (1, 2)}
    print("\n### Intra-op threads, engine int8, 64-token prompt: per-token decode, median (ms)\n")
    print("| intra-op threads | machine as it is | plus a busy-loop process taking one core |")
    print("|---:|---:|---:|")
    columns = {}
    for busy in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            time.sleep(0.5 if busy else 0)
            runs = {threads: [] for threads in engines}
            for _ in range(REPEATS):
                for threads, engine in engines.items():
                    runs[threads].append(run_engine(engine, text, greedy))
            columns[busy] = {
                t: summarise([r[0] for r in v], [r[1] for r in v])["per_token_ms"] for t, v in runs.items()
            }
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    for threads in engines:
        print(f"| {threads} | {columns[False][threads]:.2f} | {columns[True][threads]:.2f} |")


def main() -> None:
    torch.set_num_threads(1)
    paths = build_models()
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(paths["int8"] / "tokenizer.json"))
    texts = prompts(tokenizer)
    ids = {n: tokenizer.encode(t, add_special_tokens=False).ids for n, t in texts.items()}
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"int8 variant: {shipped_variant()}, activations {shipped_activations()} "
        "(as the quantize stage made the shipped model)"
    )
    decode_table(paths, texts, ids)

    logits, _ = Engine.load(paths["int8"]).session.prefill([EOS, *ids[64]])
    sampler_table(logits[0])

    threads_table(paths, texts[64])
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
