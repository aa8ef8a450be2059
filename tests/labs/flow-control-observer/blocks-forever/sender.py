# Broken on purpose: a blocking sendall of everything, then the report:
# against a receiver that does not read, sendall never returns.
import json, socket, sys, time
port, mode, sndbuf, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = (b"abcdefghijklmnopqrstuvwxyz" * (total // 26 + 1))[:total]
start = time.monotonic()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
s.connect(("127.0.0.1", port))
s.sendall(data)
seconds = time.monotonic() - start
if mode == "fill":
    print(json.dumps({"accepted": total}), flush=True)
else:
    print(json.dumps({"seconds": seconds, "rate": total / seconds}), flush=True)
s.close()
