"""tcp-echo: a TCP echo server. Run: python3 server.py PORT

Listen on 127.0.0.1 at PORT and send back every byte each client sends,
until that client closes. Read labs/tcp-echo/README.md for what is checked.
"""
import socket
import sys


def main():
    port = int(sys.argv[1])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # TODO: what must be set before bind so that a restart can bind at once?
    srv.bind(("127.0.0.1", port))
    srv.listen()
    while True:
        conn, addr = srv.accept()
        # TODO: serve conn: recv and send back until recv returns b"".
        # TODO: several clients may be connected at once.
        conn.close()


if __name__ == "__main__":
    main()
