# Broken on purpose: serves one client at a time (no thread per client).
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
while True:
    conn, _ = srv.accept()
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except ConnectionError:
                break
            if not data:
                break
            try:
                conn.sendall(data)
            except ConnectionError:
                break
