// The foundation's proof: images built by `tskit build` from the fixture registry boot under
// `tskit run qemu`, and the markers come from containers runc started from our config.json.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, ROOT, tskit} from '../support/cli.ts';

const mirror = inject('tskitMirror');
let work: string;
let cache: string;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-boot-'));
  cache = join(work, 'cache');
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

async function buildImage(yaml: string, name: string): Promise<string> {
  const built = await tskit(['build', '--mirror', mirror, '--format', 'kernel+initrd', '--name', name, '--dir', work, yaml], {env: {TSKIT_CACHE: cache}});
  expect(built.code, built.stderr).toBe(0);
  return join(work, name);
}

/** Index of each line in the console, in order; -1 where one is missing or out of order. */
function positions(console: string, lines: RegExp[]): number[] {
  let from = 0;
  return lines.map((line) => {
    const match = line.exec(console.slice(from));
    if (!match) return -1;
    from += match.index + match[0].length;
    return from;
  });
}

describe('built images boot', () => {
  it('templates/hello.yml: the runc-started container prints HELLO-OK with the files: entry', async () => {
    const image = await buildImage(join(ROOT, 'templates/hello.yml'), 'hello');
    const started = Date.now();
    const run = await tskit(['run', 'qemu', '--wait-for', 'HELLO-OK', '--timeout', '90s', image]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^HELLO-OK greetings-from-a-files-entry\r?$/m);
    // the init reports the container's exit only after runc ran it from the bundle
    expect(run.stdout).toContain('tskit-init: phase onboot');
    expect(run.stderr).toContain('--wait-for /HELLO-OK/ matched');
    console.info(`[boot] hello: build + boot to HELLO-OK in ${((Date.now() - started) / 1000).toFixed(1)} s of qemu run`);

    // the same image without the root move (runc --no-pivot), powered off by the init: exit 0
    const off = await tskit(['run', 'qemu', '--cmdline', 'tskit.nopivot tskit.poweroff=6', '--timeout', '90s', image]);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/^HELLO-OK greetings-from-a-files-entry\r?$/m);
    expect(off.stdout).toMatch(/^heartbeat 1\r?$/m);
    expect(off.stdout).not.toContain('root moved to a tmpfs');
  });

  it('lifecycle.yml: every part of the layout works once booted, then a clean poweroff runs onshutdown', async () => {
    const image = await buildImage(join(ROOT, 'test/fixtures/yml/lifecycle.yml'), 'lifecycle');
    // the YAML's containers print these when a check fails (kernel lines may say "failed" too)
    const run = await tskit(['run', 'qemu', '--fail-on', 'root is writable|whiteouts not applied|check failed:', '--timeout', '150s', image]);
    expect(run.code, `${run.stderr}\n${run.stdout.slice(-3000)}`).toBe(0);
    const console = run.stdout.replaceAll('\r', '');
    expect(
      positions(console, [
        /^RO-OK lifecycle-files-entry$/m,
        /^RW-OK up lifecycle-files-entry$/m,
        /^CREATED-OK$/m,
        /^CHECK-OK tskit fixture: not real microcode$/m,
        // CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21) from the image's org.mobyproject.config label
        /^LABELLED-from-the-label-test caps=0000000000201000$/m,
        /^ARCH-OK linux\/amd64$/m,
        /^BEAT-1$/m,
        /^BYE-OK$/m,
      ]).every((p) => p > 0),
      console.slice(-4000),
    ).toBe(true);
    for (const name of ['000-ro', '001-rw', '003-check', '004-labelled', '005-multiarch']) expect(console).toContain(`tskit-init: onboot ${name} exited 0`);
    expect(console).toContain('tskit-init: onshutdown 000-bye exited 0');
  });
});
