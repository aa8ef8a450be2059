# Broken on purpose: waits for the receiver's answer without saying it has
# finished (no shutdown(SHUT_WR)): the receiver waits for the end, the
# sender for the answer.
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
data = sys.stdin.buffer.read()
with socket.create_connection((host, port)) as s:
    s.sendall(data)
    while s.recv(65536):
        pass
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
print("bytes", len(data))
print("retransmits", struct.unpack_from("I", info, 100)[0])
print("rtt_ms", struct.unpack_from("I", info, 68)[0] / 1000)
