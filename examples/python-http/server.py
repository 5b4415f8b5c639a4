#!/usr/bin/env python3
"""An http-mode function: a long-running server on $PORT, as the OpenFaaS of-watchdog runs it.

It keeps a request counter in memory, which shows the process stays warm between requests.
"""
import http.server
import json
import os

served = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; without TCP_NODELAY the second waits for the
    # client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def _answer(self):
        global served
        served += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps({
            "method": self.command,
            "path": self.path,
            "body_bytes": len(body),
            "served_by_this_process": served,
            "pid": os.getpid(),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8081"))
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
