// How a disk boots, read from the disk itself rather than assumed (LinuxKit hard-codes
// x86_64): the boot mode from its partition table (BIOS boot code in the MBR → bios; an EFI
// system partition → uefi; both → hybrid), or for an ISO from its El Torito catalog, and the
// architecture from the machine type of the EFI loader (EFI/BOOT/BOOTX64.EFI, BOOTAA64.EFI,
// BOOTRISCV64.EFI) on the ESP or the ISO's EFI image, read through a small FAT12/16/32
// directory walk. BIOS boot code is x86 only. Every read is bounded (partition entries,
// directory sizes, cluster chains with loops), so a hostile disk costs a few reads.

export type BootMode = 'bios' | 'uefi' | 'hybrid';
/** tskit's (and OCI's) names: each provider spells them its way (EC2 x86_64, GCE X86_64, Azure x64). */
export type Architecture = 'amd64' | 'arm64' | 'riscv64';

export interface BootProbe {
  boot?: BootMode;
  arch?: Architecture;
  /** What the first sectors hold: a GPT, an MBR partition table, an ISO 9660 volume, or none of them. */
  layout: 'gpt' | 'mbr' | 'iso' | 'none';
  /** The MBR carries boot code (SeaBIOS and real BIOSes run it). */
  biosBootCode: boolean;
  /** Byte offset of the EFI system partition (or, on an ISO, of the El Torito EFI image). */
  esp?: number;
  /** An ISO's El Torito catalog: whether it has a BIOS entry and an EFI one (booting from a CD reads only these). */
  elTorito?: {bios: boolean; efi: boolean};
  /** How each was found, for messages ("MBR boot code", "EFI/BOOT/BOOTX64.EFI is an x86-64 PE"). */
  evidence: string[];
}

/** Reads `length` bytes at `offset` of the virtual disk (zeros past its end). */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

const ESP_GUID = Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex');
const ARCH_WORDS: Record<Architecture, string> = {amd64: 'an x86-64', arm64: 'an arm64', riscv64: 'a RISC-V 64'};

export async function probeBoot(read: ReadAt): Promise<BootProbe> {
  const mbr = await read(0, 512);
  const evidence: string[] = [];
  const signed = mbr[510] === 0x55 && mbr[511] === 0xaa;
  const biosBootCode = signed && mbr.subarray(0, 440).some((b) => b !== 0);
  const gpt = (await read(512, 8)).toString('latin1') === 'EFI PART';
  const iso = gpt ? undefined : await elTorito(read);
  let esp = await findEsp(read, mbr, signed);
  let biosEntry = false;
  if (iso) {
    if (iso.bios) evidence.push('an El Torito BIOS boot entry');
    if (iso.efi !== undefined) evidence.push(`an El Torito EFI boot image at byte ${iso.efi}`);
    esp ??= iso.efi;
    biosEntry = iso.bios;
  }
  const bios = biosBootCode || biosEntry;
  let boot: BootMode | undefined;
  if (biosBootCode) evidence.push('MBR boot code');
  if (esp !== undefined && !(iso && esp === iso.efi)) evidence.push(`an EFI system partition at byte ${esp}`);
  if (bios && esp !== undefined) boot = 'hybrid';
  else if (bios) boot = 'bios';
  else if (esp !== undefined) boot = 'uefi';

  let arch: Architecture | undefined;
  if (esp !== undefined) {
    const loader = await efiLoaderArch(read, esp).catch(() => undefined);
    if (loader) {
      arch = loader.arch;
      evidence.push(`${loader.path} is ${ARCH_WORDS[arch]} PE`);
    }
  }
  if (!arch && bios) {
    arch = 'amd64';
    evidence.push('BIOS boot code runs only on x86');
  }
  const layout = gpt ? 'gpt' : iso ? 'iso' : signed && [0, 1, 2, 3].some((i) => mbr[446 + 16 * i + 4] !== 0) ? 'mbr' : 'none';
  return {...(boot ? {boot} : {}), ...(arch ? {arch} : {}), layout, biosBootCode, ...(esp !== undefined ? {esp} : {}), ...(iso ? {elTorito: {bios: iso.bios, efi: iso.efi !== undefined}} : {}), evidence};
}

/** Byte offset of the EFI system partition, from a GPT or an MBR entry of type 0xEF. */
async function findEsp(read: ReadAt, mbr: Buffer, signed: boolean): Promise<number | undefined> {
  const header = await read(512, 512);
  if (header.subarray(0, 8).toString('latin1') === 'EFI PART') {
    const entriesLba = header.readBigUInt64LE(72);
    const count = Math.min(header.readUInt32LE(80), 256);
    const entrySize = header.readUInt32LE(84);
    if (entrySize < 128 || entrySize > 4096 || entriesLba > 2n ** 40n) return undefined;
    const table = await read(Number(entriesLba) * 512, count * entrySize);
    for (let i = 0; i < count; i++) {
      const entry = table.subarray(i * entrySize, (i + 1) * entrySize);
      if (entry.subarray(0, 16).equals(ESP_GUID)) {
        const lba = entry.readBigUInt64LE(32);
        return lba > 2n ** 40n ? undefined : Number(lba) * 512;
      }
    }
    return undefined;
  }
  if (!signed) return undefined;
  for (let i = 0; i < 4; i++) {
    const entry = mbr.subarray(446 + 16 * i, 446 + 16 * (i + 1));
    if (entry[4] === 0xef) return entry.readUInt32LE(8) * 512;
  }
  return undefined;
}

/** An ISO 9660 volume's El Torito boot entries: whether one is for BIOS, and where the EFI image is. */
async function elTorito(read: ReadAt): Promise<{bios: boolean; efi?: number} | undefined> {
  if ((await read(0x8001, 5)).toString('latin1') !== 'CD001') return undefined;
  const record = await read(17 * 2048, 2048);
  if (record[0] !== 0 || record.subarray(1, 6).toString('latin1') !== 'CD001' || !record.subarray(7, 30).toString('latin1').startsWith('EL TORITO')) return {bios: false};
  const catalog = await read(record.readUInt32LE(0x47) * 2048, 2048);
  if (catalog[0] !== 1) return {bios: false};
  let bios = false;
  let efi: number | undefined;
  // the validation entry names the first section's platform; its default entry follows
  let platform = catalog[1];
  for (let off = 32; off + 32 <= catalog.length; off += 32) {
    const id = catalog[off]!;
    if (off === 32 || id === 0x88 || id === 0x00) {
      if (id === 0x88) {
        if (platform === 0) bios = true;
        if (platform === 0xef) efi ??= catalog.readUInt32LE(off + 8) * 2048;
      }
      continue;
    }
    if (id === 0x90 || id === 0x91) {
      platform = catalog[off + 1];
      continue;
    }
    if (id !== 0x44) break;
  }
  return {bios, ...(efi !== undefined ? {efi} : {})};
}

interface Fat {
  read: ReadAt;
  base: number;
  bytesPerSector: number;
  clusterBytes: number;
  fatOffset: number;
  dataOffset: number;
  kind: 12 | 16 | 32;
  rootDir: {offset: number; bytes: number} | {cluster: number};
}

function parseFat(read: ReadAt, base: number, bpb: Buffer): Fat | undefined {
  const bytesPerSector = bpb.readUInt16LE(11);
  const sectorsPerCluster = bpb[13]!;
  if (![512, 1024, 2048, 4096].includes(bytesPerSector) || sectorsPerCluster === 0 || bpb[510] !== 0x55 || bpb[511] !== 0xaa) return undefined;
  const reserved = bpb.readUInt16LE(14);
  const fats = bpb[16]!;
  const rootEntries = bpb.readUInt16LE(17);
  const totalSectors = bpb.readUInt16LE(19) || bpb.readUInt32LE(32);
  const fatSectors = bpb.readUInt16LE(22) || bpb.readUInt32LE(36);
  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSector = reserved + fats * fatSectors + rootDirSectors;
  const clusters = Math.floor((totalSectors - dataSector) / sectorsPerCluster);
  const kind = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  return {
    read,
    base,
    bytesPerSector,
    clusterBytes: bytesPerSector * sectorsPerCluster,
    fatOffset: base + reserved * bytesPerSector,
    dataOffset: base + dataSector * bytesPerSector,
    kind,
    rootDir: kind === 32 ? {cluster: bpb.readUInt32LE(44)} : {offset: base + (reserved + fats * fatSectors) * bytesPerSector, bytes: rootEntries * 32},
  };
}

async function nextCluster(fat: Fat, cluster: number): Promise<number | undefined> {
  if (fat.kind === 12) {
    const at = fat.fatOffset + Math.floor(cluster * 1.5);
    const pair = (await fat.read(at, 2)).readUInt16LE(0);
    const value = cluster % 2 === 0 ? pair & 0xfff : pair >> 4;
    return value >= 0xff8 ? undefined : value;
  }
  if (fat.kind === 16) {
    const value = (await fat.read(fat.fatOffset + cluster * 2, 2)).readUInt16LE(0);
    return value >= 0xfff8 ? undefined : value;
  }
  const value = (await fat.read(fat.fatOffset + cluster * 4, 4)).readUInt32LE(0) & 0x0fffffff;
  return value >= 0x0ffffff8 ? undefined : value;
}

async function readDirectory(fat: Fat, where: Fat['rootDir']): Promise<Buffer> {
  if ('offset' in where) return fat.read(where.offset, where.bytes);
  const parts: Buffer[] = [];
  let cluster: number | undefined = where.cluster;
  let bytes = 0;
  // A directory longer than 64 clusters or 1 MiB is not an ESP's EFI/BOOT: stop there (a
  // chain that loops stops there too).
  for (let n = 0; cluster !== undefined && cluster >= 2 && n < 64 && bytes < 1024 * 1024; n++) {
    parts.push(await fat.read(fat.dataOffset + (cluster - 2) * fat.clusterBytes, fat.clusterBytes));
    bytes += fat.clusterBytes;
    cluster = await nextCluster(fat, cluster);
  }
  return Buffer.concat(parts);
}

interface DirEntry {
  name: string;
  cluster: number;
  directory: boolean;
}

function* entries(dir: Buffer, fat: Fat): Generator<DirEntry> {
  for (let at = 0; at + 32 <= dir.length; at += 32) {
    const first = dir[at]!;
    if (first === 0) return;
    const attr = dir[at + 11]!;
    if (first === 0xe5 || attr === 0x0f || attr & 0x08) continue;
    const base = dir.subarray(at, at + 8).toString('latin1').trimEnd();
    const ext = dir.subarray(at + 8, at + 11).toString('latin1').trimEnd();
    const cluster = (fat.kind === 32 ? dir.readUInt16LE(at + 20) << 16 : 0) | dir.readUInt16LE(at + 26);
    yield {name: ext ? `${base}.${ext}` : base, cluster, directory: (attr & 0x10) !== 0};
  }
}

/** The removable-media loader names (8.3: a long name such as BOOTRISCV64.EFI has a short alias like BOOTRI~1.EFI). */
const LOADERS: Record<string, Architecture> = {'BOOTX64.EFI': 'amd64', 'BOOTAA64.EFI': 'arm64'};
const PE_MACHINES: Record<number, Architecture> = {0x8664: 'amd64', 0xaa64: 'arm64', 0x5064: 'riscv64'};

/** The architecture of the loader in EFI/BOOT (BOOTX64.EFI, BOOTAA64.EFI, BOOTRISCV64.EFI) on the FAT file system at `base`. */
async function efiLoaderArch(read: ReadAt, base: number): Promise<{arch: Architecture; path: string} | undefined> {
  const fat = parseFat(read, base, await read(base, 512));
  if (!fat) return undefined;
  const efi = [...entries(await readDirectory(fat, fat.rootDir), fat)].find((e) => e.directory && e.name === 'EFI');
  if (!efi) return undefined;
  const boot = [...entries(await readDirectory(fat, {cluster: efi.cluster}), fat)].find((e) => e.directory && e.name === 'BOOT');
  if (!boot) return undefined;
  const found = [...entries(await readDirectory(fat, {cluster: boot.cluster}), fat)].filter((e) => !e.directory && /^BOOT.*\.EFI$/.test(e.name)).slice(0, 4);
  const arches = new Map<Architecture, string>();
  for (const loader of found) {
    const head = await read(fat.dataOffset + (loader.cluster - 2) * fat.clusterBytes, Math.min(fat.clusterBytes, 4096));
    const path = `EFI/BOOT/${loader.name}`;
    if (head.subarray(0, 2).toString('latin1') !== 'MZ') continue;
    const pe = head.readUInt32LE(0x3c);
    const arch = pe + 6 <= head.length && head.subarray(pe, pe + 4).toString('latin1') === 'PE\0\0' ? PE_MACHINES[head.readUInt16LE(pe + 4)] : LOADERS[loader.name];
    if (arch && !arches.has(arch)) arches.set(arch, path);
  }
  if (arches.size !== 1) return undefined;
  const [arch, path] = [...arches][0]!;
  return {arch, path};
}
