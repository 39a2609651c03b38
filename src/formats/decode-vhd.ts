// Reads VHD, fixed and dynamic. The virtual size is the footer's "current size" (what
// Hyper-V and Azure use). Checksums are verified; a dynamic disk's sector bitmaps are
// honoured (a sector whose bit is clear reads as zeros). A dynamic disk's header is held to
// qemu's limits (a power-of-two block size, at most INT_MAX/4 table entries, a table that
// covers the disk), and its block allocation table is read in pieces.
import {describeBytes, MAX_DISK_SIZE} from './disk.ts';
import {DiskFile, TableReader, type Mapping, type MappedRun} from './decode-mapped.ts';
import {VHD_DISK_TYPE, VHD_DYNAMIC_HEADER_SIZE, VHD_FOOTER_SIZE, onesComplementSum} from './vhd.ts';

const UNALLOCATED = 0xffff_ffff;
/** qemu's limit on a dynamic disk's table: INT_MAX / 4 entries. */
const MAX_TABLE_ENTRIES = Math.floor(0x7fff_ffff / 4);

/** A fixed disk: its data is the file's first `length` bytes. */
export interface FixedVhd {
  kind: 'fixed';
  size: number;
  length: number;
}

export async function vhdMapping(disk: DiskFile): Promise<Mapping | FixedVhd> {
  if (disk.size < VHD_FOOTER_SIZE) throw disk.corrupt(`the file is ${disk.size} bytes, smaller than a VHD footer`);
  const footerAt = disk.size - VHD_FOOTER_SIZE;
  const footer = await disk.read(footerAt, VHD_FOOTER_SIZE, 'footer');
  if (footer.toString('latin1', 0, 8) !== 'conectix') {
    const head = await disk.read(0, 8, 'footer copy');
    throw disk.corrupt(
      head.toString('latin1') === 'conectix'
        ? `no footer in the last 512 bytes (byte ${footerAt}) although the file starts with a footer copy: the file is truncated`
        : `no "conectix" footer in the last 512 bytes (byte ${footerAt})`,
    );
  }
  checkSum(disk, footer, footerAt, 'footer');
  const rawSize = footer.readBigUInt64BE(48);
  if (rawSize > BigInt(MAX_DISK_SIZE)) throw disk.corrupt(`the current size ${rawSize} (footer byte 48, at byte ${footerAt + 48}) is beyond ${describeBytes(MAX_DISK_SIZE)}, more than any disk tskit reads`);
  const currentSize = Number(rawSize);
  const diskType = footer.readUInt32BE(60);
  const size = Math.ceil(currentSize / 512) * 512;

  if (diskType === VHD_DISK_TYPE.fixed) {
    if (footerAt < currentSize) throw disk.corrupt(`a fixed disk of ${currentSize} bytes (footer byte 48) needs a ${currentSize + VHD_FOOTER_SIZE}-byte file; this one has ${disk.size}: it is truncated`);
    return {kind: 'fixed', size, length: currentSize};
  }
  if (diskType === VHD_DISK_TYPE.differencing) throw disk.unsupported('differencing disks (with a parent) are not supported; merge the chain first');
  if (diskType !== VHD_DISK_TYPE.dynamic) throw disk.corrupt(`disk type ${diskType} (footer byte 60) is none of fixed (2), dynamic (3), differencing (4)`);

  const rawHeaderAt = footer.readBigUInt64BE(16);
  if (rawHeaderAt > BigInt(disk.size)) throw disk.corrupt(`the dynamic disk header offset ${rawHeaderAt} (footer byte 16) lies past the end of the file (${disk.size} bytes)`);
  const headerAt = Number(rawHeaderAt);
  const header = await disk.read(headerAt, VHD_DYNAMIC_HEADER_SIZE, 'dynamic disk header');
  if (header.toString('latin1', 0, 8) !== 'cxsparse') throw disk.corrupt(`no "cxsparse" dynamic disk header at byte ${headerAt} (footer byte 16)`);
  checkSum(disk, header, headerAt, 'dynamic disk header', 36);
  const rawBatAt = header.readBigUInt64BE(16);
  const entries = header.readUInt32BE(28);
  const blockSize = header.readUInt32BE(32);
  if (blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) throw disk.corrupt(`block size ${blockSize} (header byte 32, at byte ${headerAt + 32}) is not a power of two of whole sectors`);
  if (entries > MAX_TABLE_ENTRIES) throw disk.corrupt(`the block allocation table claims ${entries} entries (header byte 28, at byte ${headerAt + 28}), beyond qemu's limit of ${MAX_TABLE_ENTRIES}`);
  if (entries * blockSize < currentSize) throw disk.corrupt(`${entries} table entries of ${blockSize} bytes (header bytes 28-35, at byte ${headerAt + 28}) cannot hold ${currentSize} bytes`);
  if (rawBatAt > BigInt(disk.size)) throw disk.corrupt(`the block allocation table offset ${rawBatAt} (header byte 16, at byte ${headerAt + 16}) lies past the end of the file (${disk.size} bytes)`);
  const batAt = Number(rawBatAt);
  const blocks = Math.min(entries, Math.ceil(size / blockSize));
  const bat = new TableReader(disk, batAt, blocks * 4, 'block allocation table');
  const bitmapBytes = Math.ceil(blockSize / 512 / 8 / 512) * 512;

  const runs = async function* (from: number): AsyncGenerator<MappedRun> {
    for (let block = Math.floor(from / blockSize); block < blocks; block++) {
      const virtual = block * blockSize;
      if (virtual >= size) break;
      if (!bat.holds(block * 4)) await bat.load(block * 4);
      const sector = bat.u32be(block * 4);
      if (sector === UNALLOCATED) continue;
      const bitmapAt = sector * 512;
      const what = `block ${block} (table entry at byte ${bat.where(block * 4)})`;
      if (bitmapAt + bitmapBytes + blockSize > footerAt) throw disk.corrupt(`${what} at byte ${bitmapAt} runs past the data area, which ends at byte ${footerAt}; the image is truncated`);
      const bitmap = await disk.read(bitmapAt, bitmapBytes, `sector bitmap of ${what}`);
      const sectors = Math.min(blockSize, size - virtual) / 512;
      // one run per stretch of sectors present in the file
      let start = -1;
      for (let s = 0; s <= sectors; s++) {
        const present = s < sectors && (bitmap[s >> 3]! & (0x80 >> (s & 7))) !== 0;
        if (present && start < 0) start = s;
        if (!present && start >= 0) {
          if (virtual + s * 512 > from) yield {virtual: virtual + start * 512, host: bitmapAt + bitmapBytes + start * 512, length: (s - start) * 512, what};
          start = -1;
        }
      }
    }
  };
  return {size, variant: 'dynamic', runs};
}

function checkSum(disk: DiskFile, bytes: Buffer, at: number, what: string, checksumAt = 64): void {
  const stored = bytes.readUInt32BE(checksumAt);
  const computed = onesComplementSum(bytes, checksumAt);
  if (stored !== computed) throw disk.corrupt(`${what} at byte ${at} has checksum 0x${stored.toString(16)}, its bytes sum to 0x${computed.toString(16)}: it is damaged`);
}
