// Starts CNCF distribution (Debian's `docker-registry`) on a free loopback port with a
// config of our own (the packaged one asks for htpasswd). Test material, not product.
import {spawn, type ChildProcess} from 'node:child_process';
import {mkdtemp, writeFile, rm} from 'node:fs/promises';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

export interface RunningRegistry {
  /** host:port, as it appears in image references. */
  host: string;
  url: string;
  port: number;
  storageDir: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Directory holding the registry's storage; a fresh temp dir when absent. */
  storageDir?: string;
  /** An `auth:` section for the registry config (htpasswd or token), as YAML text indented by two spaces. */
  authYaml?: string;
  binary?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const workDir = await mkdtemp(join(tmpdir(), 'tskit-registry-'));
  const storageDir = options.storageDir ?? join(workDir, 'storage');
  const binary = options.binary ?? 'docker-registry';
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const configPath = join(workDir, 'config.yml');
    await writeFile(
      configPath,
      [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${JSON.stringify(storageDir)}`,
        '  delete:',
        '    enabled: true',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: 127.0.0.1:${port}`,
        '  secret: tskit-test-secret',
        ...(options.authYaml ? ['auth:', options.authYaml] : []),
        '',
      ].join('\n'),
    );
    const child = spawn(binary, ['serve', configPath], {stdio: ['ignore', 'ignore', 'pipe']});
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const url = `http://127.0.0.1:${port}`;
    const ready = await waitReady(url, child);
    if (ready) {
      return {
        host: `127.0.0.1:${port}`,
        url,
        port,
        storageDir,
        async stop() {
          await stopChild(child);
          await rm(workDir, {recursive: true, force: true});
        },
      };
    }
    await stopChild(child);
    if (attempt >= 3) throw new Error(`docker-registry did not start: ${stderr.trim()}`);
  }
}

async function waitReady(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const response = await fetch(`${url}/v2/`);
      // 401 also means the registry is up (auth configured).
      if (response.status === 200 || response.status === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}
