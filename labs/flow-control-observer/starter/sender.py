"""flow-control-observer: a sender that measures TCP flow control.

Run: python3 sender.py PORT MODE SNDBUF TOTAL. Read README.md for what to
send, what to print, and what is checked.
"""
import json
import socket
import sys
import time

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


def stream(offset, n):
    """The n bytes of the stream that start at byte offset."""
    first = offset % len(ALPHABET)
    reps = (first + n) // len(ALPHABET) + 1
    return (ALPHABET * reps)[first:first + n]


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    sndbuf, total = int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # TODO: SO_SNDBUF, before connect
    s.connect(("127.0.0.1", port))
    sent = 0
    # TODO: send the TOTAL bytes of the stream. send() may take fewer bytes
    # than you give it: it returns how many it took.
    # TODO: fill mode: the first time send takes nothing for 0.5 s, print
    #   {"accepted": N} (json.dumps, flush=True), wait for the receiver's
    #   one-byte go-ahead (recv(1)), then send the rest.
    # TODO: pace mode: time the sending and print {"seconds": T, "rate": R}.
    s.close()


if __name__ == "__main__":
    main()
