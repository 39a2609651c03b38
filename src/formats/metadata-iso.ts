// LinuxKit's metadata ISO (`linuxkit metadata create`, `run qemu --data`): an ISO 9660 image
// holding one file, `config`, in its root, with the volume named `config` too; LinuxKit's
// metadata package mounts the CD and reads that file. The layout is the one LinuxKit's writer
// (github.com/rn/iso9660wrap) produces: 16 empty sectors, the primary volume descriptor, the
// terminator, the little- and big-endian path tables, the root directory, then the data.
// Unlike it, the descriptor's text fields have their ISO 9660 widths (that writer pads each to
// 32 bytes, which moves the dates), and every time is SOURCE_DATE_EPOCH rather than the clock.
const SECTOR = 2048;
const PVD_SECTOR = 16;
const L_PATH_TABLE = 18;
const M_PATH_TABLE = 19;
const ROOT_DIR = 20;
const DATA = 21;

export const METADATA_FILE = 'config';

/** The whole ISO (metadata is small: LinuxKit reads it into memory too). */
export function metadataIso(content: Buffer, mtime: number, name = METADATA_FILE): Buffer {
  const dataSectors = Math.ceil(content.length / SECTOR);
  const total = DATA + dataSectors;
  const iso = Buffer.alloc(total * SECTOR);
  const date = new Date(mtime * 1000);

  const pvd = iso.subarray(PVD_SECTOR * SECTOR, (PVD_SECTOR + 1) * SECTOR);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.fill(0x20, 8, 72); // system and volume identifiers
  pvd.write(name.slice(0, 32), 40, 'latin1');
  both32(pvd, 80, total);
  both16(pvd, 120, 1); // volume set size
  both16(pvd, 124, 1); // volume sequence number
  both16(pvd, 128, SECTOR);
  both32(pvd, 132, 10); // path table size: the root's record
  pvd.writeUInt32LE(L_PATH_TABLE, 140);
  pvd.writeUInt32BE(M_PATH_TABLE, 148);
  directoryRecord(pvd, 156, '\0', ROOT_DIR, SECTOR, true, date);
  pvd.fill(0x20, 190, 813); // volume set, publisher, preparer, application, copyright, abstract, bibliography
  pvd.write(longDate(date), 813, 'latin1');
  pvd.write(longDate(date), 830, 'latin1');
  pvd.write('0000000000000000', 847, 'latin1');
  pvd.write('0000000000000000', 864, 'latin1');
  pvd[881] = 1; // file structure version

  const terminator = iso.subarray((PVD_SECTOR + 1) * SECTOR);
  terminator[0] = 0xff;
  terminator.write('CD001', 1, 'latin1');
  terminator[6] = 1;

  for (const [sector, bigEndian] of [[L_PATH_TABLE, false], [M_PATH_TABLE, true]] as const) {
    const table = iso.subarray(sector * SECTOR);
    table[0] = 1; // the root's identifier length
    if (bigEndian) {
      table.writeUInt32BE(ROOT_DIR, 2);
      table.writeUInt16BE(1, 6);
    } else {
      table.writeUInt32LE(ROOT_DIR, 2);
      table.writeUInt16LE(1, 6);
    }
  }

  const root = iso.subarray(ROOT_DIR * SECTOR);
  let at = directoryRecord(root, 0, '\0', ROOT_DIR, SECTOR, true, date);
  at += directoryRecord(root, at, '\x01', ROOT_DIR, SECTOR, true, date);
  directoryRecord(root, at, name, DATA, content.length, false, date);

  content.copy(iso, DATA * SECTOR);
  return iso;
}

/** Writes a directory record at `at`; returns its length. */
function directoryRecord(b: Buffer, at: number, identifier: string, sector: number, size: number, directory: boolean, date: Date): number {
  const length = 33 + identifier.length + (identifier.length % 2 === 0 ? 1 : 0);
  b[at] = length;
  both32(b, at + 2, sector);
  both32(b, at + 10, size);
  b[at + 18] = date.getUTCFullYear() - 1900;
  b[at + 19] = date.getUTCMonth() + 1;
  b[at + 20] = date.getUTCDate();
  b[at + 21] = date.getUTCHours();
  b[at + 22] = date.getUTCMinutes();
  b[at + 23] = date.getUTCSeconds();
  b[at + 25] = directory ? 2 : 0;
  both16(b, at + 28, 1);
  b[at + 32] = identifier.length;
  b.write(identifier, at + 33, 'latin1');
  return length;
}

function longDate(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${date.getUTCFullYear()}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}00`;
}

function both16(b: Buffer, at: number, value: number): void {
  b.writeUInt16LE(value, at);
  b.writeUInt16BE(value, at + 2);
}

function both32(b: Buffer, at: number, value: number): void {
  b.writeUInt32LE(value, at);
  b.writeUInt32BE(value, at + 4);
}
