# Broken on purpose: takes the first EAGAIN for a full receiver and reports at once.
import json
import select
import socket
import sys
import time

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
BLOCKED = 0.5          # seconds without room: send is blocked
CHUNK = 65536


def stream(offset, n):
    """The n bytes of the stream that start at byte offset."""
    first = offset % len(ALPHABET)
    reps = (first + n) // len(ALPHABET) + 1
    return (ALPHABET * reps)[first:first + n]


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    sndbuf, total = int(sys.argv[3]), int(sys.argv[4])
    start = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)   # before connect
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    sent, reported = 0, mode != "fill"
    while sent < total:
        try:
            sent += s.send(stream(sent, min(CHUNK, total - sent)))
        except BlockingIOError:
            # not an error: the send buffer is full right now; wait for room
            if not reported:
                print(json.dumps({"accepted": sent}), flush=True)
                reported = True
                # the receiver looks at its queues, then sends one byte
                s.setblocking(True)
                s.recv(1)
                s.setblocking(False)
            select.select([], [s], [])
    seconds = time.monotonic() - start
    s.close()
    if mode == "pace":
        print(json.dumps({"seconds": seconds, "rate": total / seconds}), flush=True)


if __name__ == "__main__":
    main()
