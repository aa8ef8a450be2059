"""tcp-under-loss reference sender. Run: python3 sender.py HOST PORT < data

Sends all of stdin to HOST:PORT over TCP, waits until the receiver has
everything (it answers, then closes), and reports what the kernel's TCP
did: the bytes sent, the segments it retransmitted, its smoothed RTT.
"""
import socket
import struct
import sys

# struct tcp_info (linux/tcp.h): eight one-byte fields, then 32-bit ones;
# tcpi_rtt (microseconds) and tcpi_total_retrans are the 18th and 26th
TCPI_RTT, TCPI_TOTAL_RETRANS = 8 + 15 * 4, 8 + 23 * 4


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    data = sys.stdin.buffer.read()          # bytes: the payload is binary
    with socket.create_connection((host, port)) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)          # "that is all": the receiver sees EOF
        # sendall returned when the kernel had the bytes, not when they
        # arrived: the receiver's answer and close say they all did
        while s.recv(65536):
            pass
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        rtt_us, = struct.unpack_from("I", info, TCPI_RTT)
        retrans, = struct.unpack_from("I", info, TCPI_TOTAL_RETRANS)
    print("bytes", len(data))
    print("retransmits", retrans)
    print("rtt_ms %.1f" % (rtt_us / 1000))


if __name__ == "__main__":
    main()
