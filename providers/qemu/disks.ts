// Turns --disk specs into drives: existing files are attached as they are, a named file that
// does not exist is created with qemu-img and kept (like LinuxKit), and a disk without a file
// is created in the instance's temp dir and goes when the instance does.
import {execFile} from 'node:child_process';
import {open, stat} from 'node:fs/promises';
import {extname, join} from 'node:path';
import {promisify} from 'node:util';
import type {Emit} from '../../src/events.ts';
import {TskitError} from '../../src/errors.ts';
import {sniffFormat, type DiskFormat} from './image.ts';
import type {DiskSpec} from './options.ts';

const run = promisify(execFile);

export interface PreparedDisk {
  path: string;
  format: string;
  /** Created by this run (named files stay; temporary ones live in the temp dir). */
  created: boolean;
  temporary: boolean;
}

const defaultSize = 1024 ** 3;

const extensionFormats: Record<string, DiskFormat> = {'.img': 'raw', '.raw': 'raw', '.qcow2': 'qcow2', '.vhd': 'vpc', '.vhdx': 'vhdx', '.vmdk': 'vmdk'};

export async function prepareDisks(specs: readonly DiskSpec[], tempDir: string, qemuImg: string, emit: Emit): Promise<PreparedDisk[]> {
  const disks: PreparedDisk[] = [];
  for (const [index, spec] of specs.entries()) {
    if (spec.file && (await stat(spec.file).catch(() => undefined))) {
      disks.push({path: spec.file, format: spec.format ?? (await formatOf(spec.file)), created: false, temporary: false});
      continue;
    }
    const temporary = !spec.file;
    const format = spec.format ?? (spec.file ? extensionFormats[extname(spec.file).toLowerCase()] : undefined) ?? 'qcow2';
    const path = spec.file ?? join(tempDir, `disk${index}.${format}`);
    const size = spec.size ?? defaultSize;
    try {
      await run(qemuImg, ['create', '-q', '-f', format, path, String(size)]);
    } catch (error) {
      const stderr = (error as {stderr?: string}).stderr?.trim();
      throw new TskitError(`--disk: cannot create ${path} (${format}, ${size} bytes) with ${qemuImg}: ${stderr || (error as Error).message}`, {exitCode: 125});
    }
    emit({type: 'log', level: temporary ? 'debug' : 'info', message: `created ${temporary ? 'temporary ' : ''}disk ${path} (${format}, ${Math.round(size / 2 ** 20)} MiB)`});
    disks.push({path, format, created: true, temporary});
  }
  return disks;
}

async function formatOf(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    await handle.read(head, 0, 512, 0);
    const {size} = await handle.stat();
    const tail = Buffer.alloc(512);
    if (size >= 512) await handle.read(tail, 0, 512, size - 512);
    return sniffFormat(head, tail) ?? extensionFormats[extname(path).toLowerCase()] ?? 'raw';
  } finally {
    await handle.close();
  }
}
