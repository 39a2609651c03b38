// A minimal QMP (QEMU Machine Protocol) client: JSON objects, one per line, over the socket
// qemu got as fd 3. We need only the greeting, capability negotiation, `quit`, and the
// SHUTDOWN event that tells a guest poweroff from a reset or a panic.
import type {Duplex} from 'node:stream';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: {seconds: number; microseconds: number};
}

export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpError';
  }
}

export class QmpClient {
  private readonly socket: Duplex;
  private buffer = '';
  private readonly greeted: Promise<void>;
  private resolveGreeting!: () => void;
  private rejectGreeting!: (error: Error) => void;
  private readonly pending: {resolve: (value: unknown) => void; reject: (error: Error) => void}[] = [];
  private readonly listeners: ((event: QmpEvent) => void)[] = [];
  private closed = false;

  constructor(socket: Duplex) {
    this.socket = socket;
    this.greeted = new Promise((resolve, reject) => {
      this.resolveGreeting = resolve;
      this.rejectGreeting = reject;
    });
    this.greeted.catch(() => {});
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.receive(text));
    const close = (): void => this.close(new QmpError('QMP connection closed'));
    socket.on('end', close);
    socket.on('close', close);
    socket.on('error', (e) => this.close(new QmpError(`QMP connection failed: ${e.message}`)));
  }

  /** Waits for qemu's greeting and leaves negotiation mode; after this, commands and events flow. */
  async start(): Promise<void> {
    await this.greeted;
    await this.execute('qmp_capabilities');
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new QmpError(`QMP connection closed before ${command}`));
    return new Promise((resolve, reject) => {
      this.pending.push({resolve, reject});
      this.socket.write(`${JSON.stringify(args ? {execute: command, arguments: args} : {execute: command})}\n`);
    });
  }

  onEvent(listener: (event: QmpEvent) => void): void {
    this.listeners.push(listener);
  }

  close(error = new QmpError('QMP connection closed')): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectGreeting(error);
    for (const p of this.pending.splice(0)) p.reject(error);
    this.socket.destroy();
  }

  private receive(text: string): void {
    this.buffer += text;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in message) this.resolveGreeting();
      else if ('event' in message) for (const l of this.listeners) l(message as unknown as QmpEvent);
      else if ('return' in message) this.pending.shift()?.resolve(message.return);
      else if ('error' in message) {
        const e = message.error as {class?: string; desc?: string};
        this.pending.shift()?.reject(new QmpError(`${e.class ?? 'Error'}: ${e.desc ?? 'unknown QMP error'}`));
      }
    }
  }
}
