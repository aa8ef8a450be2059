"""py_echo_asyncio.py: echo peer on asyncio (streams and a datagram protocol).

Usage: py_echo_asyncio.py tcp|udp PORT. The first line on stdout is the
bound port.
"""
import asyncio
import sys


async def echo_stream(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the load client exits without closing politely
    finally:
        writer.close()


class EchoDatagram(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "tcp":
        server = await asyncio.start_server(echo_stream, "127.0.0.1", port,
                                            backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()
    elif mode == "udp":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            EchoDatagram, local_addr=("127.0.0.1", port))
        print(transport.get_extra_info("sockname")[1], flush=True)
        await asyncio.Event().wait()
    else:
        sys.exit("usage: py_echo_asyncio.py tcp|udp PORT")


if __name__ == "__main__":
    asyncio.run(main())
