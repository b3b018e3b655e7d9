"""Starting nginx with this repo's .platform/nginx files laid out as on the Elastic Beanstalk
AL2023 platform, in front of a local upstream. Shared by test_nginx_platform.py and
test_deploy_bundle.py; the tests that use it skip where nginx is not installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.live_gunicorn import free_port

REPO = Path(__file__).resolve().parents[1]


def nginx_in_front_of(upstream_port: int, tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """nginx with this repo's .platform files, laid out as on AL2023, proxying to `upstream_port`.

    The server block turns gzip on for event streams, harsher than the platform default, so
    only the repo's own settings can keep the stream uncompressed.
    """
    conf = tmp_path / "conf.d"
    shutil.copytree(REPO / ".platform/nginx/conf.d", conf)
    for path in conf.rglob("*.conf"):
        path.write_text(path.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}"))
    port = free_port()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path};\n"
        f"  include {conf}/*.conf;\n"
        f"  server {{ listen 127.0.0.1:{port}; gzip on; gzip_min_length 1;\n"
        f"    gzip_types text/event-stream application/json;\n"
        f"    location / {{ proxy_pass http://127.0.0.1:{upstream_port}; proxy_http_version 1.1; }}\n"
        f"    include {conf}/elasticbeanstalk/*.conf; }}\n}}\n"
    )
    nginx = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off; master_process off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return nginx, port
        except OSError:
            assert nginx.poll() is None, nginx.stderr.read()
            time.sleep(0.05)
    nginx.kill()
    raise AssertionError("nginx did not start")
