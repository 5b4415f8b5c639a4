#!/usr/bin/env python3
"""The server of Baton's python3-http template.

OpenFaaS's python3-http template runs the handler behind Flask and waitress; this one keeps
the same contract on the standard library, so a function needs nothing installed beyond its
own requirements.txt (installed at build into python_packages/): it loads
`function/handler.py`, listens on `http_port` (which Baton sets; 5000 otherwise, the port
OpenFaaS's template uses) and answers each request with what `handle(event, context)`
returns.
"""
import http.server
import json
import os
import sys
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
# The handler, then what its requirements.txt installed at build (baton deploy --stack).
sys.path[0:0] = [os.path.join(HERE, "function"), os.path.join(HERE, "python_packages")]
from handler import handle  # noqa: E402


class Event:
    """What the handler is given about the request, as in OpenFaaS's template."""

    def __init__(self, request, body):
        url = urllib.parse.urlsplit(request.path)
        self.body = body
        self.headers = request.headers
        self.method = request.command
        self.query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self.path = url.path


class Context:
    def __init__(self):
        self.hostname = os.getenv("HOSTNAME", "localhost")


def response_of(result):
    """(status, headers, body bytes) of what the handler returned, as the template reads it."""
    if result is None:
        return 200, {}, b""
    if not isinstance(result, dict):
        body = result if isinstance(result, bytes) else str(result).encode()
        return 200, {}, body
    headers = dict(result.get("headers") or {})
    body = result.get("body", "")
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif not isinstance(body, bytes):
        body = str(body).encode()
    return int(result.get("statusCode", 200)), headers, body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, payload = response_of(handle(Event(self, body), Context()))
        except Exception:
            traceback.print_exc()
            status, headers, payload = 500, {}, b"the function failed; see its logs\n"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = serve

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(os.getenv("http_port") or 5000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()
