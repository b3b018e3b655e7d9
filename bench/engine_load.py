"""bench.batching's load on the engine alone, without HTTP: what batching gives before any socket.

    python -m bench.engine_load --model-dir DIR --workers 2 --clients 1 4 8 16 --duration 20

For each mode (batching off and on) it starts `--workers` processes, as gunicorn would, each
loading the Engine as the service does (one onnxruntime thread, the default prefix cache) and
running its share of the clients (dealt out in turn) as threads. Each client streams requests
back to back from bench/load_clients.py's prompts, 64 new tokens each with its own seeds, for
`--duration` seconds. A process admits generations through the service's own Admission, with
its slots (one when batching is off, AUTOCOMPLETE_GENERATION_SLOTS' default when on); the others
wait first come, first served (never turned away here), and latency includes the wait. The
table has bench.batching's columns, so that the two runs side by side show what the HTTP layer
costs and what the engine itself can give.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from backend.config import DEFAULT_GENERATION_SLOTS, DEFAULT_PREFIX_CACHE_MB
from bench.batching import table
from bench.load import REPO, LoadError, bounded_args
from bench.load_clients import PROMPTS, percentile


def worker(model_dir: str, mode: str, clients: list[int], duration: float, new: int, ready, results) -> None:
    """One process: an Engine and its clients; puts (tokens, latencies ms, first-token ms) on `results`."""
    from backend.api.admission import Admission
    from backend.engine import Engine, GenerationParams, TokenEvent

    engine = Engine.load(model_dir, intra_op_threads=1, batching=mode, prefix_cache_mb=DEFAULT_PREFIX_CACHE_MB)
    admission = Admission(DEFAULT_GENERATION_SLOTS if engine.batches else 1, len(clients), duration + 300)
    tokens, latencies, firsts, lock = [0], [], [], threading.Lock()

    def client(index: int, deadline: float) -> None:
        sent = 0
        while time.perf_counter() < deadline:
            params = GenerationParams(max_new_tokens=new, seed=index * 100003 + sent)
            start, first, count = time.perf_counter(), None, 0
            slot = admission.acquire()
            try:
                for item in engine.stream(PROMPTS[(index + sent) % len(PROMPTS)], params):
                    if isinstance(item, TokenEvent):
                        count += 1
                        first = first or (time.perf_counter() - start) * 1000
            finally:
                slot.release()
            sent += 1
            with lock:
                tokens[0] += count
                latencies.append((time.perf_counter() - start) * 1000)
                firsts.append(first)

    ready.wait()  # every process loaded: start together
    deadline = time.perf_counter() + duration
    threads = [threading.Thread(target=client, args=(index, deadline)) for index in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((tokens[0], latencies, firsts))


def measure(model_dir: Path, mode: str, count: int, duration: float, new: int, workers: int) -> dict:
    context = multiprocessing.get_context("spawn")  # onnxruntime is loaded in the children only
    ready, results = context.Barrier(workers + 1), context.Queue()
    processes = [
        context.Process(
            target=worker,
            args=(str(model_dir), mode, list(range(w, count, workers)), duration, new, ready, results),
        )
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    ready.wait()
    started = time.perf_counter()
    parts = [results.get(timeout=duration + 300) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    latencies = [ms for _, part, _ in parts for ms in part]
    firsts = [ms for _, _, part in parts for ms in part if ms is not None]
    return {
        "mode": mode,
        "clients": count,
        "tokens_per_s": round(sum(t for t, _, _ in parts) / elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms": {f"p{q}": round(percentile(latencies, q), 1) for q in (50, 90, 99)},
        "first_token_ms_p50": round(statistics.median(firsts), 1),
        "rejected_429": None,  # no admission queue here: waiting requests wait
        "health_max_ms": None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "models/arxiv-gpt2-6x512-bpe16k")
    parser.add_argument("--workers", type=int, default=2, help="engine processes (default: %(default)s)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16], help="(default: %(default)s)")
    parser.add_argument("--duration", type=float, default=20, help="seconds per row, 1-120 (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="1-64 (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        bounded_args(args, ("clients", "duration", "max_new_tokens"))
    except LoadError as error:
        print(f"engine_load: {error}", file=sys.stderr)
        return 2
    rows = []
    for mode in ("off", "on"):
        for count in args.clients:
            rows.append(measure(args.model_dir, mode, count, args.duration, args.max_new_tokens, args.workers))
            print(f"{mode}, {count} clients: {rows[-1]['tokens_per_s']} tokens/s", file=sys.stderr)
    load1, load5, _ = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, engine alone (no HTTP), model {args.model_dir.name}, "
        f"{args.workers} process(es), {args.max_new_tokens} new tokens per request, "
        f"load average {load1:.2f} / {load5:.2f} (1 / 5 min)\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
