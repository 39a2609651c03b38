// How `tskit run <provider>` shows a session: console bytes on stdout as they come (raw with
// one instance, "name| " prefixed lines with several, each name in its own colour on a
// terminal, as `docker compose logs` does), tskit's own remarks on stderr, or with --json one
// NDJSON event per line on stdout. Also writes --console-file and --console-dir.
import {closeSync, openSync, writeSync} from 'node:fs';
import {join} from 'node:path';
import {TextDecoder} from 'node:util';
import type {Emit} from '../events.ts';
import {eventToJsonLine} from './json-lines.ts';
import type {Instance} from '../provider.ts';

export interface Writable {
  write(chunk: string | Uint8Array): unknown;
}

export interface RendererOptions {
  json: boolean;
  stdout: Writable;
  stderr: Writable;
  /** Show debug log events (the hypervisor's command line, its stderr). */
  verbose?: boolean;
  /** Also write every instance's raw console here (one file per instance, suffixed, when several). */
  consoleFile?: string;
  /** Also write each instance's raw console to DIR/<name>.log. */
  consoleDir?: string;
  /** The instances' names when known before they start (a cluster): lines are prefixed from the first byte, names padded alike. */
  names?: readonly string[];
  /** Colour each instance's prefix (a terminal without NO_COLOR). */
  colour?: boolean;
  /** Prefix lines even with one instance (several runs share the screen: `tskit test`). */
  alwaysPrefix?: boolean;
  /** False: consoles go only to files (--console-dir), not to stdout. */
  showConsole?: boolean;
  /** Also write every event as NDJSON here (--json-file), whatever goes to stdout. */
  jsonFile?: string;
}

/** docker compose's order: cyan, yellow, green, magenta, blue, then the bright ones. */
const PALETTE = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

export interface ConsoleRenderer {
  emit: Emit;
  onConsole: (instance: Instance, chunk: Uint8Array) => void;
  /** Writes what is left of unterminated prefixed lines and closes the console file. */
  close(): void;
}

export function createConsoleRenderer(options: RendererOptions): ConsoleRenderer {
  const {stdout, stderr} = options;
  const instances: string[] = [];
  const files = new Map<string, number>();
  const dirFiles = new Map<string, number>();
  const partial = new Map<string, {decoder: TextDecoder; tail: string}>();
  const expected = options.names ?? [];
  const width = Math.max(0, ...expected.map((n) => n.length));
  const several = (): boolean => instances.length > 1 || expected.length > 1 || Boolean(options.alwaysPrefix);
  const jsonFd = options.jsonFile ? openSync(options.jsonFile, 'w') : undefined;

  const prefix = (name: string): string => {
    const label = `${name.padEnd(width)}| `;
    if (!options.colour) return label;
    const at = expected.indexOf(name);
    const colour = PALETTE[(at >= 0 ? at : instances.indexOf(name)) % PALETTE.length];
    return `\x1b[${colour}m${label}\x1b[0m`;
  };

  const fileFor = (name: string): number | undefined => {
    if (!options.consoleFile) return undefined;
    let fd = files.get(name);
    if (fd === undefined) {
      const path = several() ? `${options.consoleFile}.${name}` : options.consoleFile;
      fd = openSync(path, 'w');
      files.set(name, fd);
    }
    return fd;
  };

  const dirFileFor = (name: string): number | undefined => {
    if (!options.consoleDir) return undefined;
    let fd = dirFiles.get(name);
    if (fd === undefined) {
      fd = openSync(join(options.consoleDir, `${name.replaceAll('/', '_')}.log`), 'w');
      dirFiles.set(name, fd);
    }
    return fd;
  };

  const remark = (text: string): void => {
    stderr.write(`tskit: ${text}\n`);
  };

  const emit: Emit = (event) => {
    if (event.type === 'instance.created') instances.push(event.instance);
    if (jsonFd !== undefined) writeSync(jsonFd, eventToJsonLine(event));
    if (options.json) {
      stdout.write(eventToJsonLine(event));
      return;
    }
    switch (event.type) {
      case 'log':
        if (event.level !== 'debug' || options.verbose) remark(`${event.level === 'warn' ? 'warning: ' : ''}${event.message}`);
        break;
      case 'instance.created':
        if (options.verbose) remark(`started ${event.provider} instance ${event.instance}${event.detail ? ` ${JSON.stringify(event.detail)}` : ''}`);
        break;
      case 'matched':
        if (options.verbose) remark(`${event.instance}: /${event.pattern}/ matched`);
        break;
      case 'verdict':
        remark(`${several() ? `${event.instance}: ` : ''}${event.reason}${event.exitCode === 0 ? '' : ` (exit ${event.exitCode})`}`);
        break;
      case 'test.result':
        break;
      case 'cluster.verdict':
        remark(`cluster ${event.verdict}: ${event.reason}${event.exitCode === 0 ? '' : ` (exit ${event.exitCode})`}`);
        break;
      case 'instance.destroyed':
        if (options.verbose) remark(`destroyed ${event.provider} instance ${event.instance}`);
        break;
      default:
        break;
    }
  };

  const onConsole = (instance: Instance, chunk: Uint8Array): void => {
    const fd = fileFor(instance.name);
    if (fd !== undefined) writeSync(fd, chunk);
    const dirFd = dirFileFor(instance.name);
    if (dirFd !== undefined) writeSync(dirFd, chunk);
    if (options.json || options.showConsole === false) return;
    if (!several()) {
      stdout.write(chunk);
      return;
    }
    let state = partial.get(instance.name);
    if (!state) partial.set(instance.name, (state = {decoder: new TextDecoder(), tail: ''}));
    const lines = (state.tail + state.decoder.decode(chunk, {stream: true})).split('\n');
    state.tail = lines.pop()!;
    for (const line of lines) stdout.write(`${prefix(instance.name)}${line}\n`);
  };

  let closed = false;
  return {
    emit,
    onConsole,
    close() {
      if (closed) return;
      closed = true;
      for (const [name, state] of partial) if (state.tail !== '') stdout.write(`${prefix(name)}${state.tail}\n`);
      partial.clear();
      for (const fd of [...files.values(), ...dirFiles.values()]) closeSync(fd);
      files.clear();
      dirFiles.clear();
      if (jsonFd !== undefined) closeSync(jsonFd);
    },
  };
}
