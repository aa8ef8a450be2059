"""handshake-observer, broken: in passive-close, reports CLOSE_WAIT and never closes the
connection. Caught by passive-close.


Performs one step of a TCP connection's life with its own sockets, on
127.0.0.1, and reports on stdout, one JSON object per line, the TCP state
the kernel gives at each point: of a socket from TCP_INFO, of a
connection whose socket is closed from /proc/net/tcp.
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
    """The state of a connection in the kernel's table, socket or not."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                lport = int(fields[1].split(":")[1], 16)
                rport = int(fields[2].split(":")[1], 16)
                if lport == local_port and rport == remote_port:
                    return STATES[int(fields[3], 16)]
    return None


def wait_state(local_port, remote_port, leaving, seconds=5):
    """The connection's state once it is no longer one of `leaving`."""
    deadline = time.monotonic() + seconds
    state = kernel_state(local_port, remote_port)
    while state in leaving and time.monotonic() < deadline:
        time.sleep(0.01)
        state = kernel_state(local_port, remote_port)
    return state


def listener(port, backlog):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(backlog)
    report(event="listening", state=socket_state(srv), backlog=backlog)
    return srv


def handshake(port):
    # connect returns once the kernel has done the handshake: the server's
    # program has not called accept yet
    s = socket.create_connection(("127.0.0.1", port))
    report(event="connected", local_port=s.getsockname()[1], state=socket_state(s))
    while s.recv(4096):
        pass
    s.close()


def active_close(port):
    s = socket.create_connection(("127.0.0.1", port))
    local = s.getsockname()[1]
    report(event="connected", local_port=local, state=socket_state(s))
    s.close()
    # the socket is gone; the connection is the kernel's, in its table
    report(event="closed", state=wait_state(local, port, ("ESTABLISHED", "FIN_WAIT1")))
    report(event="peer-closed", state=wait_state(local, port, ("FIN_WAIT1", "FIN_WAIT2")))


def passive_close(port):
    srv = listener(port, 8)
    conn, _ = srv.accept()
    received = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        received += len(data)
    report(event="peer-closed", state=socket_state(conn), received=received)
    time.sleep(30)
    conn.close()
    report(event="closed")


def reset(port):
    srv = listener(port, 8)
    conn, _ = srv.accept()
    # wait for the bytes to arrive, and leave them unread
    waiting = conn.recv(65536, socket.MSG_PEEK)
    report(event="unread", bytes=len(waiting))
    conn.close()
    report(event="closed")


def backlog(port):
    srv = listener(port, 1)
    # never accept: the kernel queues what the backlog allows (srv is kept:
    # a listening socket closed would reset them all)
    time.sleep(60)
    srv.close()


STEPS = {"handshake": handshake, "active-close": active_close,
         "passive-close": passive_close, "reset": reset, "backlog": backlog}


def main():
    port, step = int(sys.argv[1]), sys.argv[2]
    STEPS[step](port)


if __name__ == "__main__":
    main()
