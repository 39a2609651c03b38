// Numeric uids/gids for container names: LinuxKit gives every container (onboot, then
// onshutdown, then services) an id from 100 up, usable by name in uid, gid,
// additionalGids and in files' uid/gid.
import {TskitError} from '../errors.ts';
import type {GoInteger, MobyConfig} from './types.ts';

export const FIRST_CONTAINER_ID = 100;

/** As LinuxKit's Build(): a later container with the same name takes the later id. */
export function containerIdMap(config: MobyConfig): Map<string, number> {
  const ids = new Map<string, number>();
  let id = FIRST_CONTAINER_ID;
  for (const section of [config.onboot, config.onshutdown, config.services]) {
    for (const entry of section ?? []) ids.set(entry.name, id++);
  }
  return ids;
}

/**
 * LinuxKit's IDNumeric: absent, "" and "root" are 0; a number is taken modulo 2^32 (Go's
 * uint32 conversion); a name must be a container's. Throws a TskitError otherwise.
 */
export function idNumeric(value: string | GoInteger | undefined | null, ids: Map<string, number>, what = 'id'): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'bigint') {
    if (value < -(1n << 63n) || value >= 1n << 63n) throw new TskitError(`${what} ${value}: bad type for uid or gid`);
    return Number(BigInt.asUintN(32, value));
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TskitError(`${what} ${value}: bad type for uid or gid`);
    return Number(BigInt.asUintN(32, BigInt(value)));
  }
  if (value === '' || value === 'root') return 0;
  const id = ids.get(value);
  if (id === undefined) throw new TskitError(`cannot find ${what} "${value}": not a number, "root", or the name of a container`);
  return id;
}
