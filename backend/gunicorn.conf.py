"""gunicorn settings: `gunicorn -c backend/gunicorn.conf.py 'backend:create_app()'`.

Threaded workers (backend/worker.py: gthread that reads each request whole in its event loop
before a thread takes it), so one worker streams to several clients, answers /health while it
generates, turns the overflow away with 429 instead of leaving it in the listen backlog, and
is not tied up by clients that send half a request (docs/reliability.md). The app is not
preloaded: each worker loads its own model (onnxruntime sessions do not survive fork), which
costs the model's memory once per worker.
Workers x intra-op threads are kept within the CPU cores: more threads than cores only makes
every generation slower.
"""

import logging
import os
import tempfile
from pathlib import Path

from backend.config import DEFAULT_GENERATION_SLOTS, DEFAULT_QUEUE_SIZE, PREFIX, available_cores, env_int

log = logging.getLogger("gunicorn.error")

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{env_int('PORT', 8000, 1)}"
worker_class = "backend.worker.BufferedThreadWorker"
# One worker per core (at most 4 copies of the model) with one intra-op thread each: bench/decode.py
# measured one thread per generation as fast or faster than two on 2 cores, and much faster once
# another process takes a core, so cores are better spent on parallel requests.
DEFAULT_WORKERS = min(available_cores(), 4)
workers = env_int(PREFIX + "WORKERS", DEFAULT_WORKERS, 1)
# Enough threads for the generation slots (the running batch), the wait queue, and /health or
# /metrics alongside.
threads = env_int(PREFIX + "THREADS", DEFAULT_GENERATION_SLOTS + DEFAULT_QUEUE_SIZE + 4, 1)
timeout = env_int(PREFIX + "TIMEOUT", 60, 1)
graceful_timeout = timeout  # on SIGTERM, requests in flight get this long to finish
keepalive = 5
# Open connections per worker, including those still sending a request (each buffers at most
# 64 KiB of head plus AUTOCOMPLETE_MAX_BODY_BYTES of body); beyond this the worker stops accepting.
worker_connections = 512
preload_app = False
# gunicorn 27's control socket lives at one fixed path per user, so two servers on one machine
# (tests, or a blue/green pair) would fight over it; nothing here uses it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

_cores = available_cores()
_fair_share = max(1, _cores // workers)
_requested = env_int(PREFIX + "INTRA_OP_THREADS", _fair_share, 1)
if workers * _requested > _cores:
    log.warning(
        "%s workers x %s intra-op threads exceed %s cores; using %s intra-op threads per worker",
        workers,
        _requested,
        _cores,
        _fair_share,
    )
    _requested = _fair_share
os.environ[PREFIX + "INTRA_OP_THREADS"] = str(_requested)  # workers read it in create_app

_slots = env_int(PREFIX + "GENERATION_SLOTS", DEFAULT_GENERATION_SLOTS, 1)
_queue = env_int(PREFIX + "QUEUE_SIZE", DEFAULT_QUEUE_SIZE, 0)
if _slots + _queue >= threads:
    log.warning(
        "%s slots + %s queued requests leave no thread of %s free for /health; raise %sTHREADS",
        _slots,
        _queue,
        threads,
        PREFIX,
    )

# Prometheus multiprocess mode: every worker writes its metrics to files in this directory and
# /metrics sums them, so a scrape sees the whole server whichever worker answers it. It must be
# set before any worker imports prometheus_client.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="autocomplete-metrics-")


def on_starting(server):
    # A directory left by an earlier run would add its counts to this one's.
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
