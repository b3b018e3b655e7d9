"""Continuous batching on and off, side by side in one run: same model, same clients, loopback.

    python -m bench.batching --model-dir DIR --clients 1 4 8 16 32 --duration 20 --modes off on
    python -m bench.batching --modes off force    # a dynamically quantized int8 model batches only when forced

For each AUTOCOMPLETE_BATCHING mode it starts the production gunicorn (bench/load.py's
start_server) and, for each client count, runs bench/load_clients.py's streaming clients (64 new tokens
each by default) while /health is polled. Reported per row: generated tokens/s, requests/s,
p50/p90/p99 latency, median time to the first token, the 429 count and the slowest /health
answer; then the ratios the issue sets targets for: tokens/s against "off" at the same client
count, and p50 latency against a lone client of the same mode. All numbers are from one
process on one machine, so the ratios are what to compare, not the absolute values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.load import REPO, LoadError, bounded_args, start_server, stop_server
from bench.load_clients import run_load

MODES = ("off", "on", "force")


def measure(
    model_dir: Path, mode: str, clients: list[int], duration: float, max_new_tokens: int, workers: int
) -> list[dict]:
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"batching-{mode}-{os.getpid()}.log"
    server, port = start_server(model_dir, workers, log_path, settings={"AUTOCOMPLETE_BATCHING": mode})
    rows = []
    try:
        for count in clients:
            report = run_load("127.0.0.1", port, count, duration, max_new_tokens, server, stream=True)
            rows.append({"mode": mode, **report})
            print(
                f"batching {mode}, {count} clients: {report['tokens_per_s']} tokens/s, "
                f"p50 {report['latency_ms']['p50']} ms, "
                f"429 x {report['rejected_429']}, errors {report['errors']}",
                file=sys.stderr,
            )
    finally:
        stop_server(server)
    return rows


def table(rows: list[dict]) -> str:
    baseline = {r["clients"]: r["tokens_per_s"] for r in rows if r["mode"] == "off"}
    lone = {r["mode"]: r["latency_ms"]["p50"] for r in rows if r["clients"] == 1}
    lines = [
        "| batching | clients | tokens/s | x off | requests/s | p50 ms | x lone p50 | p90 ms | p99 ms "
        "| first token p50 ms | 429s | /health max ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        speedup = r["tokens_per_s"] / baseline[r["clients"]] if baseline.get(r["clients"]) else None
        p50 = r["latency_ms"]["p50"]
        slower = p50 / lone[r["mode"]] if p50 and lone.get(r["mode"]) else None
        cells = [
            r["mode"],
            r["clients"],
            r["tokens_per_s"],
            f"{speedup:.2f}" if speedup else "-",
            r["requests_per_s"],
            p50,
            f"{slower:.2f}" if slower else "-",
            r["latency_ms"]["p90"],
            r["latency_ms"]["p99"],
            r["first_token_ms_p50"],
            r["rejected_429"],
            r["health_max_ms"],
        ]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=REPO / "models/arxiv-gpt2-6x512-bpe16k",
        help="model to serve (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default: %(default)s)")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1, 4, 8, 16, 32],
        help="client counts, each 1-64 (default: %(default)s)",
    )
    parser.add_argument(
        "--duration", type=float, default=20, help="seconds of load per client count, 1-120 (default: %(default)s)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="tokens per request, 1-64 (default: %(default)s)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=["off", "on"],
        help="AUTOCOMPLETE_BATCHING values (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args(argv)
    try:
        bounded_args(args, ("clients", "duration", "max_new_tokens"))
        rows = [
            row
            for mode in args.modes
            for row in measure(args.model_dir, mode, args.clients, args.duration, args.max_new_tokens, args.workers)
        ]
    except LoadError as error:
        print(f"batching: {error}", file=sys.stderr)
        return 2
    load1, load5, _ = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, model {args.model_dir.name}, {args.workers} worker(s), "
        f"{args.max_new_tokens} new tokens per request, load average {load1:.2f} / {load5:.2f} (1 / 5 min)\n"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["errors"] == 0 and r["health_failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
