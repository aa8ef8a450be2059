"""py_http.py: HTTP hello-world peer on Python's http.server.

ThreadingHTTPServer with a BaseHTTPRequestHandler, HTTP/1.1 keep-alive,
"hello world" with Content-Length. Usage: py_http.py PORT. The first line
on stdout is the bound port.
"""
import http.server
import sys

BODY = b"hello world"


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes; with Nagle on, the second waits
    # for the client's delayed ACK (40 ms) and the peer measures that timer
    disable_nagle_algorithm = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format, *args):
        pass  # a line on stderr per request would measure the terminal


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # Python's 5 would drop SYNs under 50 conns

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # wrk resets at exit


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with Server(("127.0.0.1", port), Hello) as server:
        print(server.server_address[1], flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
