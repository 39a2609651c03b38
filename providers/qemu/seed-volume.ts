// The NoCloud seed as a volume the guest finds by its label: FAT32 labelled CIDATA, holding
// meta-data, user-data, network-config and tskit.json (long names), written by tskit's own FAT
// writer (src/formats/fat.ts) into a sparse file. cloud-init's NoCloud reads "a vfat or
// iso9660 filesystem labelled cidata/CIDATA"; LinuxKit's metadata package accepts FAT32 or
// ISO 9660 with that label. Not ISO 9660: tskit's ISO writer makes level-1 names only (8.3
// upper case), and NoCloud's file names need Rock Ridge or Joliet there. FAT32 rather than
// FAT16 because LinuxKit's reader (go-diskfs) knows only FAT32; the 34 MiB it needs is sparse
// (about 0.6 MB is written).
import {createHash} from 'node:crypto';
import {open} from 'node:fs/promises';
import {bufferContent, regionExtents} from '../../src/formats/content.ts';
import {fatSizeFor, fatVolume, type FatFile} from '../../src/formats/fat.ts';

export const SEED_LABEL = 'CIDATA';

/** Writes `files` (name -> text) as a CIDATA volume at `path` (which must not exist). */
export async function writeSeedVolume(path: string, files: Record<string, string>, mtime: number): Promise<void> {
  const fatFiles: FatFile[] = Object.entries(files).map(([name, text]) => ({path: name, content: bufferContent(Buffer.from(text))}));
  const size = fatSizeFor(fatFiles, 32, 0);
  const volumeId = createHash('sha256').update(path).digest().readUInt32LE(0);
  const volume = fatVolume({size, files: fatFiles, volumeId, label: SEED_LABEL, mtime, type: 32});
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.truncate(size);
    for await (const extent of regionExtents(volume.regions, size)) await handle.write(extent.data, 0, extent.data.length, extent.offset);
  } finally {
    await handle.close();
  }
}
