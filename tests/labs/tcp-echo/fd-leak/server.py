# Broken on purpose: connections are never closed.
import socket, sys, threading
kept = []
def serve(conn):
    kept.append(conn)
    while True:
        try:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)
        except ConnectionError:
            return
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
