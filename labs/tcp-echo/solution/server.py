"""tcp-echo reference solution: a thread per client, recv/sendall until EOF."""
import socket
import sys
import threading


def serve(conn):
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except ConnectionError:
                return          # the client reset the connection: drop it
            if not data:
                return          # the client finished sending
            try:
                conn.sendall(data)
            except ConnectionError:
                return


def main():
    port = int(sys.argv[1])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
