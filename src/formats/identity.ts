// Identifiers the container formats carry (VHD unique ids, VHDX GUIDs, VMDK CIDs) and their
// timestamps, derived from the disk's content fingerprint and SOURCE_DATE_EPOCH, never from
// randomness or the clock: the same disk encodes to the same bytes every time.
import {createHash} from 'node:crypto';
import {generatedMtime} from '../build/entry.ts';
import {TskitError} from '../errors.ts';

/** Seconds since 1970 that formats record as their creation time. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  try {
    return generatedMtime(env);
  } catch (error) {
    throw new TskitError((error as Error).message);
  }
}

/**
 * A 16-byte identifier in RFC 4122 byte order, name-based (version 5 bits): the sha256 of
 * what it names, the fingerprint of the content and the epoch. `label` keeps different
 * identifiers of one disk apart.
 */
export function derivedUuid(fingerprint: Buffer, label: string, epoch: number): Buffer {
  const id = createHash('sha256').update('tskit:').update(label).update('\0').update(String(epoch)).update('\0').update(fingerprint).digest().subarray(0, 16);
  id[6] = (id[6]! & 0x0f) | 0x50;
  id[8] = (id[8]! & 0x3f) | 0x80;
  return Buffer.from(id);
}

/** The same identifier in Microsoft's GUID layout (first three fields little-endian), as VHDX stores them. */
export function msGuid(uuid: Buffer): Buffer {
  const guid = Buffer.from(uuid);
  guid.writeUInt32LE(uuid.readUInt32BE(0), 0);
  guid.writeUInt16LE(uuid.readUInt16BE(4), 4);
  guid.writeUInt16LE(uuid.readUInt16BE(6), 6);
  return guid;
}

/** A GUID constant written as text (8-4-4-4-12), in Microsoft's on-disk layout. */
export function msGuidFromString(text: string): Buffer {
  return msGuid(Buffer.from(text.replaceAll('-', ''), 'hex'));
}
