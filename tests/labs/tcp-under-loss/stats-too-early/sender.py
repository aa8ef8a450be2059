# Broken on purpose: reads TCP_INFO as soon as sendall returns, while the
# end of the data is still in flight, so the last retransmissions are
# not counted yet.
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
data = sys.stdin.buffer.read()
s = socket.create_connection((host, port))
s.sendall(data)
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
s.close()
print("bytes", len(data))
print("retransmits", struct.unpack_from("I", info, 100)[0])
print("rtt_ms", struct.unpack_from("I", info, 68)[0] / 1000)
