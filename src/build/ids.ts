// uid/gid values in the YAML may name a container: LinuxKit gives each container
// (onboot, onshutdown, services, in that order) an id from 100 up.
import {TskitError} from '../errors.ts';

export function numericId(value: string | number | undefined, idMap: Map<string, number>, where: string): number {
  if (value === undefined || value === '' || value === 'root') return 0;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new TskitError(`${where}: ${value} is not a valid id`);
    return value;
  }
  const id = idMap.get(value);
  if (id === undefined) throw new TskitError(`${where}: cannot find id ${JSON.stringify(value)}: it is neither a number, "root", nor the name of a container`);
  return id;
}
