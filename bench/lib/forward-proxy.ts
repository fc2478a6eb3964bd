// The processes behind bench/sniff-forward.ts, each in its own node so that its CPU is its
// own: `node --import tsx bench/lib/forward-proxy.ts MODE [TARGET_PORT]`
//   forward  tpies' forward() in front of 127.0.0.1:TARGET_PORT (accepts paused, half-open,
//            as the TCPMUX master does)
//   pipe     the naive proxy: client.pipe(backend); backend.pipe(client)
//   sink     reads until EOF, answers with the byte count and closes
//   http     a node HTTP server answering every request with a short 200 (bench/sniff-http.ts)
// Listens on an ephemeral loopback port and prints `LISTENING <port>`; exits when its stdin
// closes, so it never outlives the benchmark.
import { createServer as createHttpServer } from 'node:http';
import net from 'node:net';
import { forward } from '../../src/sniff/forward.js';

const [mode, targetText] = process.argv.slice(2);
const targetPort = Number(targetText);

function serve(socket: net.Socket): void {
  switch (mode) {
    case 'forward': {
      const target = { kind: 'inet', family: 4, host: '127.0.0.1', port: targetPort, url: `inet://127.0.0.1:${targetPort}` } as const;
      void forward(socket, { target, connectTimeoutMs: 5000 }).then((r) => {
        if (r.outcome !== 'forwarded') process.stderr.write(`forward: ${r.outcome} ${r.reason ?? ''}\n`);
      });
      return;
    }
    case 'pipe': {
      const backend = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
      socket.on('error', () => backend.destroy());
      backend.on('error', () => socket.destroy());
      socket.pipe(backend);
      backend.pipe(socket);
      socket.resume();
      return;
    }
    case 'sink': {
      let bytes = 0;
      socket.on('data', (c: Buffer) => (bytes += c.length));
      socket.on('end', () => socket.end(`${bytes}\n`));
      socket.on('error', () => socket.destroy());
      socket.resume();
      return;
    }
    default:
      process.stderr.write(`forward-proxy: unknown mode ${String(mode)}\n`);
      process.exit(64);
  }
}

if (mode !== 'sink' && mode !== 'http' && !(targetPort > 0 && targetPort < 65536)) {
  process.stderr.write('usage: forward-proxy.ts forward|pipe TARGET_PORT | sink | http\n');
  process.exit(64);
}
const server = mode === 'http' ? createHttpServer((_req, res) => res.end('ok\n')) : net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, serve);
server.listen({ host: '127.0.0.1', port: 0 }, () => {
  process.stdout.write(`LISTENING ${(server.address() as net.AddressInfo).port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
