// How `tskit run <provider>` shows a session: console bytes on stdout as they come (raw with
// one instance, "name| " prefixed lines with several), tskit's own remarks on stderr, or with
// --json one NDJSON event per line on stdout. Also writes --console-file.
import {closeSync, openSync, writeSync} from 'node:fs';
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
}

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
  const partial = new Map<string, {decoder: TextDecoder; tail: string}>();

  const fileFor = (name: string): number | undefined => {
    if (!options.consoleFile) return undefined;
    let fd = files.get(name);
    if (fd === undefined) {
      const path = instances.length > 1 ? `${options.consoleFile}.${name}` : options.consoleFile;
      fd = openSync(path, 'w');
      files.set(name, fd);
    }
    return fd;
  };

  const remark = (text: string): void => {
    stderr.write(`tskit: ${text}\n`);
  };

  const emit: Emit = (event) => {
    if (event.type === 'instance.created') instances.push(event.instance);
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
        remark(`${instances.length > 1 ? `${event.instance}: ` : ''}${event.reason}${event.exitCode === 0 ? '' : ` (exit ${event.exitCode})`}`);
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
    if (options.json) return;
    if (instances.length <= 1) {
      stdout.write(chunk);
      return;
    }
    let state = partial.get(instance.name);
    if (!state) partial.set(instance.name, (state = {decoder: new TextDecoder(), tail: ''}));
    const lines = (state.tail + state.decoder.decode(chunk, {stream: true})).split('\n');
    state.tail = lines.pop()!;
    for (const line of lines) stdout.write(`${instance.name}| ${line}\n`);
  };

  return {
    emit,
    onConsole,
    close() {
      for (const [name, state] of partial) if (state.tail !== '') stdout.write(`${name}| ${state.tail}\n`);
      partial.clear();
      for (const fd of files.values()) closeSync(fd);
      files.clear();
    },
  };
}
