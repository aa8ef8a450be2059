# Broken on purpose: a non-blocking select loop that ignores send()'s
# return value, so whatever the socket buffer cannot take is lost.
import select, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
srv.setblocking(False)
conns = []
while True:
    readable, _, _ = select.select([srv] + conns, [], [])
    for s in readable:
        if s is srv:
            conn, _ = srv.accept()
            conn.setblocking(False)
            conns.append(conn)
            continue
        try:
            data = s.recv(65536)
        except (BlockingIOError, ConnectionError):
            continue
        if not data:
            conns.remove(s)
            s.close()
            continue
        try:
            s.send(data)
        except (BlockingIOError, ConnectionError):
            pass
