# Broken on purpose: one recv is taken for the whole message.
import socket, sys, threading
def serve(conn):
    with conn:
        try:
            data = conn.recv(1024)
            conn.sendall(data)
        except ConnectionError:
            pass
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
