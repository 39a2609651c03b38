// CRC-32C (Castagnoli), the checksum of VHDX headers, region tables and log entries.
// Node's zlib has only the IEEE CRC-32; the structures it covers are small (4-64 KiB).
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array, initial = 0): number {
  let crc = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The CRC-32C of `data` with its 4-byte checksum field at `at` taken as zero. */
export function crc32cWithZeroField(data: Buffer, at: number): number {
  const copy = Buffer.from(data);
  copy.fill(0, at, at + 4);
  return crc32c(copy);
}
