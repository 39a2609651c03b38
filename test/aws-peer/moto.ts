// Starts moto's server (the AWS control plane fake: EC2, EBS direct APIs, S3) on a free
// loopback port, and stops it. Test material.
import {spawn, type ChildProcess} from 'node:child_process';
import {createServer} from 'node:net';

export interface Moto {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number};
      server.close(() => resolve(port));
    });
  });
}

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {stdio: ['ignore', 'ignore', 'pipe'], detached: false});
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`moto_server did not start (${error.message}); install it: pip install "moto[server]" (scripts/setup-host.sh does)`)));
    child.once('exit', (code) => reject(new Error(`moto_server exited with ${code}: ${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await Promise.race([
      fetch(`${url}/moto-api/`).then((r) => r.ok, () => false),
      failed,
    ]);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not answer on ${url} within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  failed.catch(() => {});
  return {
    url,
    port,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The installed moto's version (for reports). */
export async function motoVersion(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', 'import moto; print(moto.__version__)'], {stdio: ['ignore', 'pipe', 'ignore']});
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', () => resolve(out.trim() || 'unknown'));
    child.on('error', () => resolve('not installed'));
  });
}
