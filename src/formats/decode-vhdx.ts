// Reads VHDX: the current header (CRC-32C checked, highest sequence number), the region
// table (or its copy), the metadata items and the BAT. A log that still needs replaying and
// differencing disks are refused with a message saying what to do. Sizes are held to the
// specification's limits (64 TiB, regions on 1 MiB boundaries inside the file), and the BAT
// is read in pieces.
import {crc32cWithZeroField} from './crc32c.ts';
import {describeBytes} from './disk.ts';
import {DiskFile, TableReader, type Mapping, type MappedRun} from './decode-mapped.ts';
import {VHDX_BLOCK_STATE, VHDX_GUIDS, batIndex, chunkRatio} from './vhdx.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The largest virtual disk a VHDX holds (the specification's limit, as qemu enforces it). */
export const VHDX_MAX_SIZE = 64 * 1024 * 1024 * MiB;

export async function vhdxMapping(disk: DiskFile): Promise<Mapping> {
  const identifier = await disk.read(0, 8, 'file identifier');
  if (identifier.toString('latin1') !== 'vhdxfile') throw disk.corrupt('no "vhdxfile" identifier at byte 0');

  const headers: Array<{at: number; sequence: bigint; block: Buffer}> = [];
  const problems: string[] = [];
  for (const at of [64 * KiB, 128 * KiB]) {
    const block = await disk.read(at, 4 * KiB, 'header');
    const problem = checkCrc(block, 'head', 4 * KiB) ?? (block.readUInt16LE(66) === 1 ? undefined : `version ${block.readUInt16LE(66)}, not 1`);
    if (problem) problems.push(`header at byte ${at}: ${problem}`);
    else headers.push({at, sequence: block.readBigUInt64LE(8), block});
  }
  if (headers.length === 0) throw disk.corrupt(problems.join('; '));
  headers.sort((a, b) => (a.sequence > b.sequence ? -1 : 1));
  const header = headers[0]!.block;
  if (!header.subarray(48, 64).equals(Buffer.alloc(16))) {
    throw disk.unsupported('its log holds changes not yet written back (it was not closed cleanly); open it once in Hyper-V, or run qemu-img check -r all on it, to replay the log');
  }

  let regions: Buffer | undefined;
  let regionsAt = 0;
  for (const at of [192 * KiB, 256 * KiB]) {
    const table = await disk.read(at, 64 * KiB, 'region table');
    const problem = checkCrc(table, 'regi', 64 * KiB);
    if (!problem) {
      regions = table;
      regionsAt = at;
      break;
    }
    problems.push(`region table at byte ${at}: ${problem}`);
  }
  if (!regions) throw disk.corrupt(problems.join('; '));
  const regionCount = regions.readUInt32LE(8);
  if (regionCount > 2047) throw disk.corrupt(`the region table at byte ${regionsAt} claims ${regionCount} entries (at most 2047)`);
  let bat: {offset: number; length: number} | undefined;
  let metadata: {offset: number; length: number} | undefined;
  for (let i = 0; i < regionCount; i++) {
    const at = 16 + i * 32;
    const guid = regions.subarray(at, at + 16);
    const rawOffset = regions.readBigUInt64LE(at + 16);
    const region = {offset: Number(rawOffset), length: regions.readUInt32LE(at + 24)};
    const where = `region table entry ${i} (at byte ${regionsAt + at})`;
    if (rawOffset % BigInt(MiB) !== 0n || rawOffset < BigInt(MiB) || region.length % MiB !== 0) throw disk.corrupt(`${where} places a region at byte ${rawOffset} with ${region.length} bytes, not on 1 MiB boundaries past the headers`);
    if (rawOffset + BigInt(region.length) > BigInt(disk.size)) throw disk.corrupt(`${where} places a region at byte ${rawOffset} with ${region.length} bytes, past the end of the file (${disk.size} bytes)`);
    if (guid.equals(VHDX_GUIDS.bat)) bat = region;
    else if (guid.equals(VHDX_GUIDS.metadata)) metadata = region;
    else if (regions.readUInt32LE(at + 28) & 1) throw disk.unsupported(`the region table lists a required region this reader does not know (entry ${i})`);
  }
  if (!bat || !metadata) throw disk.corrupt(`the region table lacks the ${bat ? 'metadata' : 'BAT'} region`);

  const meta = await disk.read(metadata.offset, Math.min(metadata.length, 64 * KiB), 'metadata table');
  if (meta.toString('latin1', 0, 8) !== 'metadata') throw disk.corrupt(`no "metadata" table at byte ${metadata.offset} (the metadata region)`);
  const itemCount = meta.readUInt16LE(10);
  if (itemCount > 2047 || 32 + itemCount * 32 > meta.length) throw disk.corrupt(`the metadata table at byte ${metadata.offset} claims ${itemCount} entries (at most 2047, within its ${metadata.length}-byte region)`);
  const item = async (guid: Buffer, name: string, length: number): Promise<Buffer | undefined> => {
    for (let i = 0; i < itemCount; i++) {
      const at = 32 + i * 32;
      if (!meta.subarray(at, at + 16).equals(guid)) continue;
      const offset = meta.readUInt32LE(at + 16);
      if (meta.readUInt32LE(at + 20) < length || offset + length > metadata!.length) throw disk.corrupt(`metadata item ${name} (table entry ${i}) does not fit its region`);
      return disk.read(metadata!.offset + offset, length, `metadata item ${name}`);
    }
    return undefined;
  };
  const parameters = await item(VHDX_GUIDS.fileParameters, 'file parameters', 8);
  const sizeItem = await item(VHDX_GUIDS.virtualDiskSize, 'virtual disk size', 8);
  const sectorItem = await item(VHDX_GUIDS.logicalSectorSize, 'logical sector size', 4);
  if (!parameters || !sizeItem || !sectorItem) throw disk.corrupt('the metadata lacks a required item (file parameters, virtual disk size or logical sector size)');
  if (parameters.readUInt32LE(4) & 2 || (await item(VHDX_GUIDS.parentLocator, 'parent locator', 0))) {
    throw disk.unsupported('differencing disks (with a parent) are not supported; merge the chain first');
  }
  const blockSize = parameters.readUInt32LE(0);
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) throw disk.corrupt(`block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  const logicalSector = sectorItem.readUInt32LE(0);
  if (logicalSector !== 512 && logicalSector !== 4096) throw disk.corrupt(`logical sector size ${logicalSector} is neither 512 nor 4096`);
  const rawVirtualSize = sizeItem.readBigUInt64LE(0);
  if (rawVirtualSize > BigInt(VHDX_MAX_SIZE)) throw disk.corrupt(`the virtual disk size ${rawVirtualSize} (metadata item virtual disk size) is beyond the format's limit of ${describeBytes(VHDX_MAX_SIZE)}`);
  const virtualSize = Number(rawVirtualSize);
  const size = Math.ceil(virtualSize / 512) * 512;
  const ratio = chunkRatio(blockSize, logicalSector);
  const blocks = Math.ceil(virtualSize / blockSize);
  const entries = blocks === 0 ? 0 : blocks + Math.floor((blocks - 1) / ratio);
  if (entries * 8 > bat.length) throw disk.corrupt(`the BAT region (${bat.length} bytes at byte ${bat.offset}) is too small for ${entries} entries`);

  const table = new TableReader(disk, bat.offset, entries * 8, 'BAT');
  const runs = async function* (from: number): AsyncGenerator<MappedRun> {
    for (let block = Math.floor(from / blockSize); block < blocks; block++) {
      const entryAt = batIndex(block, ratio) * 8;
      if (!table.holds(entryAt)) await table.load(entryAt);
      const entry = table.u64le(entryAt);
      const state = Number(entry & 7n);
      const what = `payload block ${block} (BAT entry at byte ${table.where(entryAt)})`;
      if (state === VHDX_BLOCK_STATE.partiallyPresent) throw disk.unsupported(`${what} is partially present, which only differencing disks use`);
      if (state !== VHDX_BLOCK_STATE.fullyPresent) {
        if (state === 4 || state > 7) throw disk.corrupt(`${what} has the invalid state ${state}`);
        continue; // not present, undefined, zero, unmapped: zeros without a parent
      }
      const virtual = block * blockSize;
      yield {virtual, host: Number(entry >> 20n) * MiB, length: Math.min(blockSize, size - virtual), what};
    }
  };
  return {size, variant: 'vhdx', runs};
}

function checkCrc(block: Buffer, signature: string, length: number): string | undefined {
  if (block.toString('latin1', 0, 4) !== signature) return `no "${signature}" signature`;
  const stored = block.readUInt32LE(4);
  const computed = crc32cWithZeroField(block.subarray(0, length), 4);
  return stored === computed ? undefined : `CRC-32C 0x${stored.toString(16)} does not match its content (0x${computed.toString(16)}): it is damaged`;
}
