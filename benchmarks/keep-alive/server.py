"""A function with a real start: an http-mode process that initialises for INIT_MS (as a
function importing a framework or loading a model does) before it listens on $PORT, then
answers `GET /?ms=N` by spinning N ms of CPU, one request at a time (the memory a function
books is what keep-alive weighs; touching it per request would only race the booking).
`baton bench trace replay --process-dir` deploys it, each function with its own INIT_MS."""
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

time.sleep(int(os.environ.get("INIT_MS", "0")) / 1000)


class Busy(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        ms = int(query.get("ms", ["0"])[0])
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            pass
        body = f"spun {ms} ms\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Busy).serve_forever()
