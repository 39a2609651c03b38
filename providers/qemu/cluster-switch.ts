// The Ethernet segment a qemu cluster's VMs share: a small learning switch inside tskit, on a
// Unix socket in a private (0700) directory. Each VM's second NIC is a `-netdev stream` client
// of it; qemu's stream framing is a 4-byte big-endian length before each frame. Userspace all
// the way: no root, no tap, no bridge, no multicast routing on the host, and no frame ever
// becomes host traffic. It goes when tskit does (it lives in tskit's process), so a killed
// tskit leaves only the directory, which `tskit gc` removes.
import {createServer, type Server, type Socket} from 'node:net';

/** Ethernet jumbo frames stay well under this; a bigger length means a broken peer. */
const MAX_FRAME = 65_550;
/** A port whose VM does not read stops getting frames past this much queued (a switch drops, it does not buffer). */
const MAX_QUEUED = 1 << 20;

export class ClusterSwitch {
  readonly path: string;
  /** Frames forwarded, flooded and dropped, for --verbose and tests. */
  readonly stats = {frames: 0, flooded: 0, dropped: 0};
  private readonly server: Server;
  private readonly ports = new Set<Socket>();
  private readonly macTable = new Map<string, Socket>();

  private constructor(path: string, server: Server) {
    this.path = path;
    this.server = server;
  }

  static async listen(path: string): Promise<ClusterSwitch> {
    const server = createServer();
    const sw = new ClusterSwitch(path, server);
    server.on('connection', (socket) => sw.attach(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // The switch must not keep tskit alive on its own.
    server.unref();
    return sw;
  }

  get portCount(): number {
    return this.ports.size;
  }

  async close(): Promise<void> {
    for (const port of this.ports) port.destroy();
    this.ports.clear();
    this.macTable.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private attach(socket: Socket): void {
    this.ports.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      while (pending.length - at >= 4) {
        const length = pending.readUInt32BE(at);
        if (length > MAX_FRAME || length < 14) {
          socket.destroy();
          return;
        }
        if (pending.length - at < 4 + length) break;
        this.forward(socket, pending.subarray(at, at + 4 + length));
        at += 4 + length;
      }
      pending = at === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(at));
    });
    const detach = (): void => {
      this.ports.delete(socket);
      for (const [mac, port] of this.macTable) if (port === socket) this.macTable.delete(mac);
    };
    socket.on('close', detach);
    socket.on('error', detach);
  }

  /** `framed` is the length prefix and the frame: destination MAC at 4..10, source at 10..16. */
  private forward(from: Socket, view: Buffer): void {
    this.stats.frames++;
    // A view into the receive buffer, which the next chunk replaces: one copy for every port.
    const framed = Buffer.from(view);
    const source = framed.toString('hex', 10, 16);
    // Group addresses (broadcast, multicast) have the low bit of the first octet set.
    if ((framed[10]! & 1) === 0) this.macTable.set(source, from);
    const target = (framed[4]! & 1) === 0 ? this.macTable.get(framed.toString('hex', 4, 10)) : undefined;
    if (target) {
      if (target !== from) this.send(target, framed);
      return;
    }
    this.stats.flooded++;
    for (const port of this.ports) if (port !== from) this.send(port, framed);
  }

  private send(port: Socket, framed: Buffer): void {
    if (port.writableLength > MAX_QUEUED || port.destroyed) {
      this.stats.dropped++;
      return;
    }
    port.write(framed);
  }
}
