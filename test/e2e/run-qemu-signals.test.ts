// Ctrl-C and SIGTERM during a boot: tskit exits 130/143 and leaves no qemu and no temp dir.
// Sent to the whole process group too, as a terminal does, which also reaches qemu unless
// tskit keeps it out of the terminal's group.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {makeKernelInitrdImage} from '../support/initrd-busybox.ts';
import {leftovers, startTskit} from './run-qemu-support.ts';

let dir: string;
let state: string;
let idle: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-test-run-qemu-signals-'));
  state = join(dir, 'state');
  idle = await makeKernelInitrdImage(dir, 'idle', {cmdline: 'console=ttyS0', script: 'echo TSKIT-READY\nwhile true; do sleep 1; done'});
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('tskit run qemu, interrupted', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s in the middle of the boot: exit %d, VM and temp files gone', async (signal, code) => {
    const t = startTskit([idle, '--json', '--timeout', '60s'], {stateDir: state});
    // The kernel is printing: the VM is well under way.
    await t.waitForStdout('Run /init as init process');
    t.child.kill(signal);
    const r = await t.result;
    expect(r.code, r.stderr).toBe(code);
    expect(r.events.find((e) => e.type === 'verdict')).toMatchObject({verdict: 'interrupted', exitCode: code});
    expect(r.events.at(-1)).toMatchObject({type: 'instance.destroyed'});
    expect(leftovers(r)).toEqual([]);
  });

  it('Ctrl-C from a terminal (SIGINT to the whole process group) stops in order', async () => {
    const t = startTskit([idle, '--json', '--timeout', '60s'], {stateDir: state, detached: true});
    await t.waitForStdout('TSKIT-READY');
    process.kill(-t.child.pid!, 'SIGINT');
    const r = await t.result;
    expect(r.code, r.stderr).toBe(130);
    // qemu was not in the group: tskit stopped it (a destroyed event), it did not just die.
    expect(r.events.map((e) => e.type).slice(-2)).toEqual(['verdict', 'instance.destroyed']);
    // qemu reports a signal it gets on stderr (a debug log event): it got none.
    expect(r.events.filter((e) => e.type === 'log' && /terminating on signal/.test(String(e.message)))).toEqual([]);
    expect(leftovers(r)).toEqual([]);
  });

  it('a second Ctrl-C kills at once, still leaving nothing', async () => {
    const t = startTskit([idle, '--json', '--timeout', '60s'], {stateDir: state});
    await t.waitForStdout('TSKIT-READY');
    t.child.kill('SIGINT');
    t.child.kill('SIGINT');
    const r = await t.result;
    expect(r.code, r.stderr).toBe(130);
    expect(r.ms).toBeLessThan(60_000);
    expect(leftovers(r)).toEqual([]);
  });

  it('stops as on SIGPIPE (141) when the reader of stdout goes away, like `| head`', async () => {
    const t = startTskit([idle, '--timeout', '60s'], {stateDir: state});
    await t.waitForStdout('Linux version');
    t.child.stdout!.destroy();
    const r = await t.result;
    expect(r.code, r.stderr).toBe(141);
    expect(r.stderr).toMatch(/interrupted by SIGPIPE/);
    expect(leftovers(r)).toEqual([]);
  });

  it('SIGTERM while qemu is starting leaves nothing either', async () => {
    const t = startTskit([idle, '--json', '--timeout', '60s'], {stateDir: state});
    await t.waitForStdout('"type":"instance.created"');
    t.child.kill('SIGTERM');
    const r = await t.result;
    expect(r.code, r.stderr).toBe(143);
    expect(leftovers(r)).toEqual([]);
  });
});
