// A layer's tar headers in order, saved beside the layer blob in the cache, so a later build
// can plan its flattening (pass one) without decompressing the layer again. The second pass
// still reads the layer itself and checks it against this list, entry by entry.
import {decompress} from '../oci/layer.ts';
import type {BlobDeriver} from '../oci/types.ts';
import type {Entry} from './entry.ts';
import {readTar} from './tar/reader.ts';

/** Bump when the reader's interpretation of a tar (or this encoding) changes. */
export const LAYER_INDEX_KIND = 'layer-headers-v1';

type Row = [path: string, type: Entry['type'], mode: number, uid: number, gid: number, mtime: number, size: number, linkname?: string | null, dev?: [number, number] | null, xattrs?: Record<string, string> | null];

export function encodeLayerIndex(entries: Entry[]): Buffer {
  const rows: Row[] = entries.map((e) => {
    const row: Row = [e.path, e.type, e.mode, e.uid, e.gid, e.mtime, e.size];
    const dev: [number, number] | null = e.devmajor !== undefined || e.devminor !== undefined ? [e.devmajor ?? 0, e.devminor ?? 0] : null;
    const xattrs = e.xattrs ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('base64')])) : null;
    if (e.linkname !== undefined || dev || xattrs) row.push(e.linkname ?? null);
    if (dev || xattrs) row.push(dev);
    if (xattrs) row.push(xattrs);
    return row;
  });
  return Buffer.from(JSON.stringify(rows));
}

/** The headers, or undefined when the data is not a valid index (then the layer is read instead). */
export function decodeLayerIndex(data: Buffer): Entry[] | undefined {
  let rows: unknown;
  try {
    rows = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(rows)) return undefined;
  const entries: Entry[] = [];
  for (const row of rows as Row[]) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'string') return undefined;
    const [path, type, mode, uid, gid, mtime, size, linkname, dev, xattrs] = row;
    const entry: Entry = {path, type, mode, uid, gid, mtime, size};
    if (linkname !== undefined && linkname !== null) entry.linkname = linkname;
    if (dev) [entry.devmajor, entry.devminor] = dev;
    if (xattrs) entry.xattrs = Object.fromEntries(Object.entries(xattrs).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    entries.push(entry);
  }
  return entries;
}

/** What the index keeps of an entry: its header, without content or PAX records. */
export function layerHeader(entry: Entry): Entry {
  const header: Entry = {...entry};
  delete header.content;
  delete header.pax;
  return header;
}

/**
 * Indexes a layer while it downloads (the cache's BlobDeriver), so the build that pulled it
 * reads it once, as a warm build does, instead of once for the index and once for content.
 */
export const layerIndexDeriver: BlobDeriver = {
  kind: LAYER_INDEX_KIND,
  applies: (descriptor) => /layer|rootfs\.diff/.test(descriptor.mediaType),
  async derive(bytes) {
    const headers: Entry[] = [];
    for await (const entry of readTar(decompress(bytes, 'a layer being downloaded'), 'a layer being downloaded')) headers.push(layerHeader(entry));
    return encodeLayerIndex(headers);
  },
};
