// `tskit run qemu --networking tap,NAME | bridge,NAME` (LinuxKit's modes), each in a network
// and mount namespace the test makes itself (`unshare`): a tap device, or a bridge that
// qemu-bridge-helper adds the guest's tap to (its ACL, /etc/qemu/bridge.conf, exists only
// inside the namespace, on a private copy of /etc). The guest sets its address and pings the
// host side: the marker proves frames crossed. What the host lacks is refused before qemu
// starts, in one line naming the fix. Skipped where namespaces cannot be made.
import {execFile} from 'node:child_process';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {BIN, ensureBuilt, NODE, ROOT, tskit} from '../support/cli.ts';

const run = promisify(execFile);
const mirror = inject('tskitMirror');
const namespaces = await run('unshare', ['-n', '-m', '--propagation', 'private', 'true']).then(() => true, () => false);
if (!namespaces) console.info('[hostnet] skipped: cannot create network namespaces here (unshare -n -m)');
let work: string;

const NET_SCRIPT = `files:
  - path: etc/init.d/040-net
    mode: "0755"
    contents: |
      #!/bin/sh
      ip link set eth0 up && ip addr add 10.99.0.2/24 dev eth0
      if ping -c 3 -W 3 10.99.0.1 >/dev/null 2>&1; then echo "net: reached 10.99.0.$((0+1))"; else echo "net: unreachable"; fi
`;

/** Runs `tskit run qemu ARGS` inside a fresh network+mount namespace after `setup` (shell). */
async function inNamespace(setup: string, args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  const script = join(work, `ns-${Date.now()}.sh`);
  await writeFile(script, `set -e\nmount -t sysfs sysfs /sys\nip link set lo up\n${setup}\nexec "${NODE}" "${BIN}" run qemu ${args.map((a) => `'${a}'`).join(' ')}\n`);
  return run('unshare', ['-n', '-m', '--propagation', 'private', 'bash', script], {timeout: 240_000, maxBuffer: 16 << 20}).then(
    (r) => ({code: 0, stdout: r.stdout, stderr: r.stderr}),
    (e: {code?: number; stdout?: string; stderr?: string}) => ({code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}),
  );
}

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-hostnet-'));
  const yml = join(work, 'net.yml');
  await writeFile(yml, (await readFile(join(ROOT, 'templates/hello.yml'), 'utf8')).replace('files:\n', NET_SCRIPT));
  const built = await tskit(['build', '--dir', work, '--mirror', mirror, yml], {env: {TSKIT_CACHE: join(work, 'cache')}, timeout: 300_000});
  expect(built.code, built.stderr).toBe(0);
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

const boot = ['--wait-for', 'net: reached 10.99.0.1', '--fail-on', 'net: unreachable', '--timeout', '150s'];

describe.skipIf(!namespaces)('run qemu on host networks', () => {
  it('tap,NAME: the guest reaches the host end of an existing tap device', async () => {
    const r = await inNamespace('ip tuntap add tap0 mode tap\nip addr add 10.99.0.1/24 dev tap0\nip link set tap0 up', ['--networking', 'tap,tap0', ...boot, join(work, 'net')]);
    expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/^net: reached 10\.99\.0\.1\r?$/m);
  }, 400_000);

  it('bridge,NAME: qemu-bridge-helper puts the guest on the bridge', async () => {
    const setup = [
      'etc=$(mktemp -d)',
      'mount -t tmpfs tmpfs "$etc" && cp -a /etc/. "$etc"/ && mkdir -p "$etc"/qemu && echo "allow br0" > "$etc"/qemu/bridge.conf && mount --bind "$etc" /etc',
      'ip link add br0 type bridge && ip addr add 10.99.0.1/24 dev br0 && ip link set br0 up',
    ].join('\n');
    const r = await inNamespace(setup, ['--networking', 'bridge,br0', ...boot, join(work, 'net')]);
    expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/^net: reached 10\.99\.0\.1\r?$/m);
  }, 400_000);

  it('refuses what the host lacks before starting qemu, naming the fix', async () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['', ['--networking', 'tap,tap9'], /no network device tap9; create it first \(ip tuntap add tap9 mode tap/],
      ['ip link add br5 type bridge', ['--networking', 'tap,br5'], /br5 is not a tap device/],
      ['ip link add br1 type bridge', ['--networking', 'bridge,br1'], /bridge\.conf (does not exist|does not allow br1).*allow br1/],
      ['', ['--networking', 'bridge,br7'], /no bridge br7; create it first \(ip link add br7 type bridge/],
    ];
    for (const [setup, args, message] of cases) {
      const r = await inNamespace(setup, [...args, '--timeout', '30s', join(work, 'net')]);
      expect(r.code, r.stderr).toBe(125);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const publish = await tskit(['run', 'qemu', '--networking', 'tap,tap0', '--publish', '8080:80', join(work, 'net')]);
    expect(publish.code).toBe(2);
    expect(publish.stderr).toMatch(/publish forwards ports of user networking/);
  });
});
