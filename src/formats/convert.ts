// `tskit convert`: an existing disk image (raw, VHD, VHDX, VMDK, qcow2) re-encoded as a
// container format, streaming, with the virtual size rounded up to what the target needs.
import {stat} from 'node:fs/promises';
import {resolve} from 'node:path';
import {TskitError} from '../errors.ts';
import {ignoreEvents, type Emit} from '../events.ts';
import type {DiskImage} from './disk.ts';
import {openDisk, type InputFormat} from './decode.ts';
import {encodeDisk, roundSize, sizeMultiple, type ContainerFormat} from './encode.ts';

export interface ConvertOptions {
  format: ContainerFormat;
  /** The input's format; default: from its magic bytes. */
  inputFormat?: InputFormat;
  signal?: AbortSignal;
  emit?: Emit;
  sha256?: boolean;
  level?: number;
}

export interface Converted {
  input: string;
  inputFormat: InputFormat;
  output: string;
  format: ContainerFormat;
  /** The input's virtual size, and the output's (rounded up as the format needs). */
  inputSize: number;
  virtualSize: number;
  /** Bytes of the output file. */
  size: number;
  sha256?: string;
}

export async function convertDiskImage(input: string, output: string, options: ConvertOptions): Promise<Converted> {
  const emit = options.emit ?? ignoreEvents;
  await refuseSameFile(input, output);
  // encodeDisk copies what it keeps beyond the next extents, so the reader may reuse its buffers
  const opened = await openDisk(input, {...(options.inputFormat ? {format: options.inputFormat} : {}), ...(options.signal ? {signal: options.signal} : {}), reuseBuffers: true});
  try {
    const source = opened.image;
    const virtualSize = roundSize(options.format, source.size);
    if (virtualSize !== source.size) {
      emit({type: 'log', level: 'warn', message: `${input}: virtual size ${source.size} bytes rounded up to ${virtualSize} (${options.format} needs a multiple of ${sizeMultiple(options.format)} bytes)${(await hasGpt(source)) ? '; its GPT backup header is no longer in the last sector (sgdisk -e fixes that)' : ''}`});
    }
    const image: DiskImage = virtualSize === source.size ? source : {size: virtualSize, extents: () => source.extents()};
    const encoded = await encodeDisk(options.format, image, output, {
      ...(options.signal ? {signal: options.signal} : {}),
      ...(options.level !== undefined ? {level: options.level} : {}),
      sha256: options.sha256 !== false,
      progress: (done, total) => emit({type: 'progress', task: `convert ${opened.format} to ${options.format}`, done, total, unit: 'bytes'}),
    });
    return {
      input,
      inputFormat: opened.format,
      output,
      format: options.format,
      inputSize: source.size,
      virtualSize,
      size: encoded.size,
      ...(encoded.sha256 ? {sha256: encoded.sha256} : {}),
    };
  } finally {
    await opened.close();
  }
}

async function refuseSameFile(input: string, output: string): Promise<void> {
  const [a, b] = await Promise.all([stat(input).catch(() => undefined), stat(output).catch(() => undefined)]);
  if (resolve(input) === resolve(output) || (a && b && a.ino === b.ino && a.dev === b.dev)) {
    throw new TskitError(`the output ${output} is the input; write the converted image to another file`);
  }
  if (b?.isDirectory()) throw new TskitError(`the output ${output} is a directory; give a file name`);
}

/** Whether the disk's second sector holds a GPT header (read from the first extent). */
async function hasGpt(image: DiskImage): Promise<boolean> {
  for await (const extent of image.extents()) {
    if (extent.offset > 512) return false;
    const at = 512 - extent.offset;
    return extent.data.length >= at + 8 && extent.data.toString('latin1', at, at + 8) === 'EFI PART';
  }
  return false;
}
