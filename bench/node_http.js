// node_http.js: HTTP hello-world peer on Node's http module (keep-alive).
// Usage: node node_http.js PORT. The first line on stdout is the bound port.
'use strict';
const http = require('http');

const body = 'hello world';
const server = http.createServer((req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
});
server.listen({ host: '127.0.0.1', port: Number(process.argv[2] || 0),
                backlog: 1024 }, () => {
  console.log(server.address().port);
});
