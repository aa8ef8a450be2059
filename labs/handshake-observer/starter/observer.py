"""handshake-observer: one step of a TCP connection's life, and what the
kernel says. Run: python3 observer.py PORT STEP

Read labs/handshake-observer/README.md for the steps and what to print.
"""
import json
import socket
import sys
import time

STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
          6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
          11: "CLOSING"}


def report(**fields):
    print(json.dumps(fields), flush=True)


def socket_state(s):
    """The state of a socket's connection: the first byte of TCP_INFO."""
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return STATES[info[0]]


def kernel_state(local_port, remote_port):
    """The state of a connection in /proc/net/tcp, whether a socket holds it or not."""
    # TODO: read /proc/net/tcp and /proc/net/tcp6: skip the heading line;
    # fields[1] is local "HEXIP:HEXPORT", fields[2] remote, fields[3] the
    # state in hex
    return None


def handshake(port):
    s = socket.create_connection(("127.0.0.1", port))
    # TODO: report "connected" with your socket's own port and its state
    while s.recv(4096):
        pass
    s.close()


def active_close(port):
    # TODO: connect, report "connected", close first, report "closed" and,
    # once the server has closed too, "peer-closed", with the states from
    # kernel_state (the socket is gone after close)
    pass


def passive_close(port):
    # TODO: listen, report "listening", accept, read until b"", report
    # "peer-closed" (state, bytes received), close, report "closed"
    pass


def reset(port):
    # TODO: listen, report "listening", accept, wait for the bytes without
    # reading them (MSG_PEEK), report "unread", close, report "closed"
    pass


def backlog(port):
    # TODO: listen(1), report "listening", never accept
    time.sleep(60)


STEPS = {"handshake": handshake, "active-close": active_close,
         "passive-close": passive_close, "reset": reset, "backlog": backlog}


def main():
    port, step = int(sys.argv[1]), sys.argv[2]
    STEPS[step](port)


if __name__ == "__main__":
    main()
