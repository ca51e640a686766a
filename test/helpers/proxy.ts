/**
 * A TCP proxy on 127.0.0.1 that can cut one path while others flow: `cut()` drops every open
 * connection and refuses new ones (a worker that loses Temporal), `heal()` lets new ones through.
 */
import net from 'node:net';

export interface Proxy {
  address: string;
  port: number;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const [host, portText] = target.split(':');
  const socks = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) return client.destroy();
    const up = net.connect(Number(portText), host);
    socks.add(client).add(up);
    const drop = () => {
      client.destroy();
      up.destroy();
      socks.delete(client);
      socks.delete(up);
    };
    client.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
    client.pipe(up).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    cut() {
      open = false;
      for (const s of socks) s.destroy();
      socks.clear();
    },
    heal() {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        open = false;
        for (const s of socks) s.destroy();
        server.close(() => resolve());
      }),
  };
}
