// node_echo.js: echo peer on Node's net and dgram modules.
// Usage: node node_echo.js tcp|udp PORT. The first line on stdout is the
// bound port.
'use strict';
const net = require('net');
const dgram = require('dgram');

const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg || 0);

if (mode === 'tcp') {
  const server = net.createServer((sock) => {
    sock.on('error', () => {});  // the load client exits without closing
    sock.pipe(sock);             // echo, pausing while the peer is not reading
  });
  server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
    console.log(server.address().port);
  });
} else if (mode === 'udp') {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    sock.send(msg, rinfo.port, rinfo.address);
  });
  sock.bind(port, '127.0.0.1', () => console.log(sock.address().port));
} else {
  console.error('usage: node node_echo.js tcp|udp PORT');
  process.exit(2);
}
