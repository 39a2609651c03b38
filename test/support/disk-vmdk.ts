// An independent reading of a streamOptimized VMDK as VMware's Virtual Disk Format 5.0
// describes it, for tests: walks the stream front to back as a streaming consumer would
// (grain markers, metadata markers, footer, end-of-stream) and returns every structure it
// met, so a test can check the tables against the grains actually in the file. Test material.
import {inflateSync} from 'node:zlib';

export interface VmdkHeader {
  magic: string;
  version: number;
  flags: number;
  capacity: number;
  grainSize: number;
  descriptorOffset: number;
  descriptorSize: number;
  numGTEsPerGT: number;
  rgdOffset: bigint;
  gdOffset: bigint;
  overHead: number;
  uncleanShutdown: number;
  newlineChars: string;
  compressAlgorithm: number;
}

export interface StreamVmdk {
  header: VmdkHeader;
  footer: VmdkHeader;
  footerRaw: Buffer;
  headerRaw: Buffer;
  descriptor: string;
  /** Grains in file order: the sector of their marker, the LBA it names, the inflated bytes. */
  grains: Array<{sector: number; lba: number; data: Buffer}>;
  /** Grain tables in file order, with the sector of their first entry. */
  grainTables: Array<{sector: number; markerSectors: number; entries: Uint32Array}>;
  grainDirectory: {sector: number; markerSectors: number; entries: Uint32Array};
  /** Metadata marker types in file order (1 GT, 2 GD, 3 footer, 0 end of stream). */
  markers: number[];
  endOfStreamSector: number;
}

export function parseVmdkHeader(h: Buffer): VmdkHeader {
  return {
    magic: h.toString('latin1', 0, 4),
    version: h.readUInt32LE(4),
    flags: h.readUInt32LE(8),
    capacity: Number(h.readBigUInt64LE(12)),
    grainSize: Number(h.readBigUInt64LE(20)),
    descriptorOffset: Number(h.readBigUInt64LE(28)),
    descriptorSize: Number(h.readBigUInt64LE(36)),
    numGTEsPerGT: h.readUInt32LE(44),
    rgdOffset: h.readBigUInt64LE(48),
    gdOffset: h.readBigUInt64LE(56),
    overHead: Number(h.readBigUInt64LE(64)),
    uncleanShutdown: h[72]!,
    newlineChars: h.toString('latin1', 73, 77),
    compressAlgorithm: h.readUInt16LE(77),
  };
}

export function parseStreamVmdk(file: Buffer): StreamVmdk {
  const header = parseVmdkHeader(file.subarray(0, 512));
  const descriptor = file.toString('utf8', header.descriptorOffset * 512, (header.descriptorOffset + header.descriptorSize) * 512).replace(/\0+$/, '');
  const grains: StreamVmdk['grains'] = [];
  const grainTables: StreamVmdk['grainTables'] = [];
  const markers: number[] = [];
  let grainDirectory: StreamVmdk['grainDirectory'] | undefined;
  let footerRaw: Buffer | undefined;
  let endOfStreamSector = -1;
  let at = header.overHead * 512;
  while (at < file.length) {
    if (at % 512 !== 0) throw new Error(`structure at ${at} is not sector-aligned`);
    const value = file.readBigUInt64LE(at);
    const size = file.readUInt32LE(at + 8);
    if (size > 0) {
      grains.push({sector: at / 512, lba: Number(value), data: inflateSync(file.subarray(at + 12, at + 12 + size))});
      at += Math.ceil((12 + size) / 512) * 512;
      continue;
    }
    const type = file.readUInt32LE(at + 12);
    markers.push(type);
    if (!file.subarray(at + 16, at + 512).every((b) => b === 0)) throw new Error(`metadata marker at ${at} has a non-zero pad`);
    const sectors = Number(value);
    const body = file.subarray(at + 512, at + 512 + sectors * 512);
    if (type === 0) {
      if (sectors !== 0) throw new Error(`end-of-stream marker at ${at} has value ${sectors}`);
      endOfStreamSector = at / 512;
      at += 512;
      break;
    }
    if (type === 1) grainTables.push({sector: at / 512 + 1, markerSectors: sectors, entries: new Uint32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length))});
    else if (type === 2) grainDirectory = {sector: at / 512 + 1, markerSectors: sectors, entries: new Uint32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length))};
    else if (type === 3) footerRaw = Buffer.from(body);
    else throw new Error(`unknown marker type ${type} at ${at}`);
    at += 512 + sectors * 512;
  }
  if (at !== file.length) throw new Error(`${file.length - at} bytes after the end-of-stream marker`);
  if (!grainDirectory || !footerRaw) throw new Error('no grain directory or footer in the stream');
  return {header, footer: parseVmdkHeader(footerRaw), footerRaw, headerRaw: file.subarray(0, 512), descriptor, grains, grainTables, grainDirectory, markers, endOfStreamSector};
}
