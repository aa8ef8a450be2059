"""py_echo_socketserver.py: echo peer on Python's socketserver.

TCP: ThreadingTCPServer, a thread per connection looping recv/sendall.
UDP: UDPServer, one datagram at a time. Usage: py_echo_socketserver.py
tcp|udp PORT. The first line on stdout is the bound port.
"""
import socketserver
import sys


class EchoStream(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except ConnectionError:
            pass  # the load client exits without closing politely


class EchoDatagram(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024  # Python's 5 would drop SYNs under 50 conns


class UDPServer(socketserver.UDPServer):
    max_packet_size = 65536


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    cls, handler = {"tcp": (TCPServer, EchoStream),
                    "udp": (UDPServer, EchoDatagram)}[mode]
    with cls(("127.0.0.1", port), handler) as server:
        print(server.server_address[1], flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
