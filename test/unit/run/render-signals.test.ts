import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {describe, expect, it} from 'vitest';
import type {Instance} from '../../../src/provider.ts';
import {createConsoleRenderer as createRenderer} from '../../../src/cli/console-render.ts';
import {eventToJsonLine} from '../../../src/cli/json-lines.ts';
import {exitCodeForAbort, Interruption, trapInterrupts} from '../../../src/run/signals.ts';

const sink = () => {
  const chunks: string[] = [];
  return {chunks, write: (c: string | Uint8Array) => chunks.push(typeof c === 'string' ? c : Buffer.from(c).toString())};
};
const vm = (name: string): Instance => ({provider: 'qemu', id: name, name});

describe('createRenderer', () => {
  it('passes one instance console through raw, and remarks on stderr', async () => {
    const out = sink();
    const err = sink();
    const dir = await mkdtemp(join(tmpdir(), 'tskit-test-render-'));
    const r = createRenderer({json: false, stdout: out, stderr: err, consoleFile: join(dir, 'c.log')});
    r.emit({type: 'instance.created', instance: 'a', provider: 'qemu'});
    r.onConsole(vm('a'), Buffer.from('par'));
    r.onConsole(vm('a'), Buffer.from('tial\x1b[31m\n'));
    r.emit({type: 'verdict', instance: 'a', verdict: 'timeout', exitCode: 124, reason: 'no verdict after 5s'});
    r.close();
    expect(out.chunks.join('')).toBe('partial\x1b[31m\n');
    expect(err.chunks.join('')).toBe('tskit: no verdict after 5s (exit 124)\n');
    expect(await readFile(join(dir, 'c.log'), 'utf8')).toBe('partial\x1b[31m\n');
    await rm(dir, {recursive: true});
  });

  it('prefixes lines per instance when there are several, with a file each', async () => {
    const out = sink();
    const dir = await mkdtemp(join(tmpdir(), 'tskit-test-render-'));
    const r = createRenderer({json: false, stdout: out, stderr: sink(), consoleFile: join(dir, 'c.log')});
    r.emit({type: 'instance.created', instance: 'a', provider: 'aws'});
    r.emit({type: 'instance.created', instance: 'b', provider: 'aws'});
    r.onConsole(vm('a'), Buffer.from('one\ntw'));
    r.onConsole(vm('b'), Buffer.from('x\n'));
    r.onConsole(vm('a'), Buffer.from('o\nend'));
    r.close();
    expect(out.chunks.join('')).toBe('a| one\nb| x\na| two\na| end\n');
    expect(await readFile(join(dir, 'c.log.a'), 'utf8')).toBe('one\ntwo\nend');
    await rm(dir, {recursive: true});
  });

  it('writes NDJSON with the schema version and nothing raw in --json mode', () => {
    const out = sink();
    const r = createRenderer({json: true, stdout: out, stderr: sink()});
    r.onConsole(vm('a'), Buffer.from('raw'));
    r.emit({type: 'console', instance: 'a', data: 'raw'});
    expect(out.chunks.map((l) => JSON.parse(l))).toEqual([{v: 1, time: expect.any(String), type: 'console', instance: 'a', data: 'raw'}]);
    expect(eventToJsonLine({type: 'log', level: 'info', message: 'x'}, new Date(0))).toBe('{"v":1,"time":"1970-01-01T00:00:00.000Z","type":"log","level":"info","message":"x"}\n');
  });
});

describe('trapInterrupts', () => {
  it('turns the first signal into stop, the second into hurry, the third into giving up', async () => {
    let gaveUp: Interruption | undefined;
    const trap = trapInterrupts({signals: ['SIGHUP'], onGiveUp: (i) => (gaveUp = i)});
    try {
      process.kill(process.pid, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
      expect(trap.stop.aborted).toBe(true);
      expect(trap.hurry.aborted).toBe(false);
      expect(trap.interruption).toMatchObject({signal: 'SIGHUP', exitCode: 129});
      expect(exitCodeForAbort(trap.stop)).toBe(129);
      process.kill(process.pid, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
      expect(trap.hurry.aborted).toBe(true);
      process.kill(process.pid, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
      expect(gaveUp).toBeInstanceOf(Interruption);
    } finally {
      trap.dispose();
    }
    expect(process.listenerCount('SIGHUP')).toBe(0);
    expect(new Interruption('SIGINT').exitCode).toBe(130);
    expect(new Interruption('SIGTERM').exitCode).toBe(143);
  });
});
