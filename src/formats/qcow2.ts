// qcow2 version 3 (QEMU's docs/interop/qcow2.txt), written front to back in one stream:
// pass one over the disk finds the non-zero 64 KiB clusters, so every table's place and
// content is known before the first byte. The file is
//   header | refcount table | refcount blocks | L1 table | L2 tables | data clusters
// with every cluster's refcount 1, and data clusters in virtual order.
import {blockRuns, expectBlock, nonZeroBlocks, scanBlocks} from './blocks.ts';
import type {DiskImage} from './disk.ts';
import type {EncodeContext} from './encoder.ts';
import type {Piece} from './file-sink.ts';

export const QCOW2_MAGIC = 0x514649fb;
export const QCOW2_CLUSTER_BITS = 16;
const CLUSTER = 1 << QCOW2_CLUSTER_BITS;
const L2_ENTRIES = CLUSTER / 8;
const REFCOUNT_ORDER = 4; // 16-bit refcounts
const REFCOUNTS_PER_BLOCK = (CLUSTER * 8) / (1 << REFCOUNT_ORDER);
const HEADER_LENGTH = 112;
/** "Refcount is exactly one": set on every L1 and L2 entry of a file without snapshots. */
export const QCOW2_COPIED = 1n << 63n;

export interface Qcow2Layout {
  l1Entries: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountBlocks: number;
  l1Offset: number;
  l2Offset: number;
  l2Tables: number;
  dataOffset: number;
  clusters: number;
}

/** Where everything goes, given how many L2 tables and data clusters there are. */
export function qcow2Layout(size: number, l2Tables: number, dataClusters: number): Qcow2Layout {
  const l1Entries = Math.max(1, Math.ceil(size / (CLUSTER * L2_ENTRIES)));
  const l1Clusters = Math.ceil((l1Entries * 8) / CLUSTER);
  const fixed = 1 + l1Clusters + l2Tables + dataClusters;
  let refcountBlocks = 1;
  let refcountTableClusters = 1;
  for (;;) {
    const clusters = fixed + refcountTableClusters + refcountBlocks;
    const needBlocks = Math.ceil(clusters / REFCOUNTS_PER_BLOCK);
    const needTable = Math.ceil((needBlocks * 8) / CLUSTER);
    if (needBlocks === refcountBlocks && needTable === refcountTableClusters) break;
    refcountBlocks = needBlocks;
    refcountTableClusters = needTable;
  }
  const refcountTableOffset = CLUSTER;
  const l1Offset = refcountTableOffset + (refcountTableClusters + refcountBlocks) * CLUSTER;
  const l2Offset = l1Offset + l1Clusters * CLUSTER;
  const dataOffset = l2Offset + l2Tables * CLUSTER;
  return {l1Entries, refcountTableOffset, refcountTableClusters, refcountBlocks, l1Offset, l2Offset, l2Tables, dataOffset, clusters: fixed + refcountTableClusters + refcountBlocks};
}

export async function* encodeQcow2(image: DiskImage, context: EncodeContext): AsyncGenerator<Piece> {
  const map = await scanBlocks(image, CLUSTER, {signal: context.signal, progress: (offset) => context.progress(offset, 'scan'), fingerprint: false}); // qcow2 has no identifiers
  const l2Of = (cluster: number) => Math.floor(cluster / L2_ENTRIES);
  const l2Indexes: number[] = [];
  for (const cluster of map.allocated) if (l2Indexes.at(-1) !== l2Of(cluster)) l2Indexes.push(l2Of(cluster));
  const layout = qcow2Layout(image.size, l2Indexes.length, map.allocated.length);

  yield header(image.size, layout);
  yield CLUSTER - HEADER_LENGTH - 8;

  const table = Buffer.alloc(layout.refcountTableClusters * CLUSTER);
  for (let i = 0; i < layout.refcountBlocks; i++) table.writeBigUInt64BE(BigInt(layout.refcountTableOffset + (layout.refcountTableClusters + i) * CLUSTER), i * 8);
  yield table;
  for (let i = 0; i < layout.refcountBlocks; i++) {
    const block = Buffer.alloc(CLUSTER);
    const first = i * REFCOUNTS_PER_BLOCK;
    const used = Math.min(REFCOUNTS_PER_BLOCK, layout.clusters - first);
    for (let j = 0; j < used; j++) block.writeUInt16BE(1, j * 2);
    yield block;
  }

  const l1 = Buffer.alloc(Math.ceil((layout.l1Entries * 8) / CLUSTER) * CLUSTER);
  l2Indexes.forEach((l1Index, n) => l1.writeBigUInt64BE(BigInt(layout.l2Offset + n * CLUSTER) | QCOW2_COPIED, l1Index * 8));
  yield l1;

  let ordinal = 0;
  for (const l1Index of l2Indexes) {
    const l2 = Buffer.alloc(CLUSTER);
    for (; ordinal < map.allocated.length && l2Of(map.allocated[ordinal]!) === l1Index; ordinal++) {
      l2.writeBigUInt64BE(BigInt(layout.dataOffset + ordinal * CLUSTER) | QCOW2_COPIED, (map.allocated[ordinal]! % L2_ENTRIES) * 8);
    }
    yield l2;
  }

  ordinal = 0;
  for await (const run of blockRuns(nonZeroBlocks(image, CLUSTER, {signal: context.signal, progress: context.progress}))) {
    for (let i = 0; i < run.data.length / CLUSTER; i++) expectBlock(map, ordinal++, run.index + i);
    yield run.data;
  }
  expectBlock(map, ordinal);
}

function header(size: number, layout: Qcow2Layout): Buffer {
  const h = Buffer.alloc(HEADER_LENGTH + 8); // + the end-of-extensions marker
  h.writeUInt32BE(QCOW2_MAGIC, 0);
  h.writeUInt32BE(3, 4);
  h.writeUInt32BE(QCOW2_CLUSTER_BITS, 20);
  h.writeBigUInt64BE(BigInt(size), 24);
  h.writeUInt32BE(layout.l1Entries, 36);
  h.writeBigUInt64BE(BigInt(layout.l1Offset), 40);
  h.writeBigUInt64BE(BigInt(layout.refcountTableOffset), 48);
  h.writeUInt32BE(layout.refcountTableClusters, 56);
  h.writeUInt32BE(REFCOUNT_ORDER, 96);
  h.writeUInt32BE(HEADER_LENGTH, 100);
  // byte 104: compression type 0 (zlib), then padding to 112
  return h;
}
