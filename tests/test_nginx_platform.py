"""The .platform nginx settings for Elastic Beanstalk: streaming responses are neither buffered nor
gzipped. Oracles: the directives as written; nginx -t on the files where the AL2023 platform
includes them; and a real nginx in front of an upstream that sends one event and then waits
until the client has it. Tests that run nginx skip without it (apt-get install nginx-light).
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import subprocess
import threading

import pytest

from tests.nginx_proxy import REPO, nginx_in_front_of


def test_nginx_settings_turn_off_buffering_and_gzip_for_the_stream():
    http_level = (REPO / ".platform/nginx/conf.d/streaming.conf").read_text()
    server_level = (REPO / ".platform/nginx/conf.d/elasticbeanstalk/generate-stream.conf").read_text()

    def directives(text):
        return {
            line.strip().rstrip(";") for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
        }

    assert "proxy_buffering off" in directives(http_level)
    stream = {" ".join(d.split()) for d in directives(server_level)}
    assert {
        "location ~ ^/(generate/stream|v1/completions)$ {",
        "proxy_pass http://127.0.0.1:8000",
        "proxy_buffering off",
        "gzip off",
    } <= stream


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light) to parse the config"
)
def test_nginx_accepts_the_files_where_the_platform_includes_them(tmp_path):
    """nginx -t on a config laid out like the AL2023 platform's: conf.d in http, conf.d/elasticbeanstalk in server."""
    shutil.copytree(REPO / ".platform/nginx/conf.d", tmp_path / "conf.d")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path};\n"
        f"  include {tmp_path}/conf.d/*.conf;\n"
        "  server { listen 127.0.0.1:8080; gzip off;\n"
        f"    location / {{ proxy_pass http://127.0.0.1:8000; }}\n"
        f"    include {tmp_path}/conf.d/elasticbeanstalk/*.conf; }}\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light) to proxy through"
)
@pytest.mark.parametrize("path", ["/generate/stream", "/v1/completions"])
def test_nginx_passes_each_event_on_at_once_and_uncompressed(tmp_path, path):
    """The upstream sends one event and waits until the client has it; a buffering proxy never delivers it."""
    client_has_first_event = threading.Event()
    upstream_saw = {}

    class Upstream(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes, as a stream does

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'event: token\ndata: {"index": 0, "text": " we"}\n\n')
            self.wfile.flush()
            upstream_saw["client_had_first_event"] = client_has_first_event.wait(timeout=5)
            self.wfile.write(b'event: done\ndata: {"completions": []}\n\n')

        def log_message(self, *args):
            pass

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    nginx, port = nginx_in_front_of(upstream.server_address[1], tmp_path)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        connection.request(
            "POST", path, body=b"{}", headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        )
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Encoding") is None
        first = b""
        while not first.endswith(b"\n\n"):
            first += response.read1(1) or b"!"
        client_has_first_event.set()
        rest = response.read()
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()
    assert first == b'event: token\ndata: {"index": 0, "text": " we"}\n\n'
    assert upstream_saw["client_had_first_event"], "nginx held the first event back until the upstream finished"
    assert rest.endswith(b'event: done\ndata: {"completions": []}\n\n')
