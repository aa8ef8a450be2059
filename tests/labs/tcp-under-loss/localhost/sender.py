# Broken on purpose: connects to 127.0.0.1 whatever host it is given; the
# receiver is on the other side of the link.
import socket, sys
port = int(sys.argv[2])
data = sys.stdin.buffer.read()
with socket.create_connection(("127.0.0.1", port)) as s:
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
print("bytes", len(data))
