"""tcp-under-loss: a bulk TCP sender. Run: python3 sender.py HOST PORT < data

Send all of stdin to HOST:PORT, then report what the kernel's TCP did.
Read labs/tcp-under-loss/README.md for what is checked.
"""
import socket
import struct
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    data = sys.stdin.buffer.read()
    s = socket.create_connection((host, port))
    # TODO: send all of data, and tell the receiver you have finished.
    # TODO: wait until the receiver has everything: it answers, then closes.
    # TODO: read TCP_INFO: s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    #       gives struct tcp_info (linux/tcp.h) as bytes; struct.unpack_from
    #       takes fields out of it.
    print("bytes", len(data))
    print("retransmits", 0)       # TODO
    print("rtt_ms", 0)            # TODO
    s.close()


if __name__ == "__main__":
    main()
