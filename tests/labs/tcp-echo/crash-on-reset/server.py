# Broken on purpose: a select loop with no error handling, so a client's
# reset (ConnectionResetError) ends the whole server.
import select, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
conns = []
while True:
    readable, _, _ = select.select([srv] + conns, [], [])
    for s in readable:
        if s is srv:
            conn, _ = srv.accept()
            conns.append(conn)
        else:
            data = s.recv(65536)
            if not data:
                conns.remove(s)
                s.close()
            else:
                s.sendall(data)
