# Broken on purpose: reads stdin as text. The payload is random bytes,
# which are not UTF-8: the decode fails.
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
data = sys.stdin.read().encode()
with socket.create_connection((host, port)) as s:
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print("bytes", len(data))
print("retransmits", struct.unpack_from("I", info, 100)[0])
print("rtt_ms", struct.unpack_from("I", info, 68)[0] / 1000)
