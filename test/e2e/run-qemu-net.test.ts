// --publish: the guest (virtio-net loaded from the kernel's modules) serves HTTP with busybox
// httpd; the host reaches it through the forwarded port, and a CGI request powers it off.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {makeKernelInitrdImage, virtioNetModules} from '../support/initrd-busybox.ts';
import {freePort} from '../support/registry.ts';
import {leftovers, startTskit, tskit} from './run-qemu-support.ts';

let dir: string;
let state: string;
let web: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-test-run-qemu-net-'));
  state = join(dir, 'state');
  web = await makeKernelInitrdImage(dir, 'web', {
    cmdline: 'console=ttyS0 quiet',
    modules: virtioNetModules,
    files: {
      'www/index.html': 'hello from the guest\n',
      'www/cgi-bin/off': "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nbye\\n'\n(sleep 1; poweroff -f) </dev/null >/dev/null 2>&1 &\n",
    },
    script: [
      'chmod +x /www/cgi-bin/off',
      'ip link set lo up',
      'ip link set eth0 up',
      'ip addr add 10.0.2.15/24 dev eth0',
      'ip route add default via 10.0.2.2',
      'httpd -p 80 -h /www',
      'echo TSKIT-NET-READY',
      'while true; do sleep 1; done',
    ].join('\n'),
  });
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('tskit run qemu --publish', () => {
  it('forwards a host port to the guest', async () => {
    const port = await freePort();
    const t = startTskit([web, '--publish', `127.0.0.1:${port}:80/tcp`, '--timeout', '90s'], {stateDir: state});
    await t.waitForStdout('TSKIT-NET-READY');
    const page = await fetch(`http://127.0.0.1:${port}/index.html`);
    expect(await page.text()).toBe('hello from the guest\n');
    // The guest powers itself off after answering: the run ends as a clean poweroff.
    expect(await (await fetch(`http://127.0.0.1:${port}/cgi-bin/off`)).text()).toBe('bye\n');
    const r = await t.result;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/guest powered off/);
    expect(leftovers(r)).toEqual([]);
  });

  it('refuses --publish with --networking none', async () => {
    const r = await tskit([web, '--publish', '8080:80', '--networking', 'none'], {stateDir: state});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--publish needs networking/);
  });
});
