"""A web page on a loopback port, for the servers that fetch links (``upload-link``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving_page(html: bytes, path: str = "/page.html") -> Iterator[str]:
    """Serve ``html`` at ``path`` (anything else is 404) on 127.0.0.1; yields its URL."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == path
            body = html if found else b"not found"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
