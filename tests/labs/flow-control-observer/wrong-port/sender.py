# Broken on purpose: connects to a fixed port, not the one in argv[1].
import socket, sys
s = socket.socket()
s.connect(("127.0.0.1", 8000))
s.sendall(b"abc")
