# Broken on purpose: an AF_INET socket, which cannot reach an IPv6 host.
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
data = sys.stdin.buffer.read()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect((host, port))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
s.close()
print("bytes", len(data))
print("retransmits", struct.unpack_from("I", info, 100)[0])
print("rtt_ms", struct.unpack_from("I", info, 68)[0] / 1000)
