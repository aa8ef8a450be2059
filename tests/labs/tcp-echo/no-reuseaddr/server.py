# Broken on purpose: no SO_REUSEADDR, so a restart cannot bind while the
# old connections are in TIME_WAIT.
import socket, sys, threading
def serve(conn):
    with conn:
        while True:
            try:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            except ConnectionError:
                break
srv = socket.socket()
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
