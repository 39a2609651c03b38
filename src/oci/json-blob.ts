// Manifests, indexes and configs are JSON blobs; a blob that is not JSON (a layer digest
// given where a manifest belongs, a damaged file) is a user-facing error, not a crash.
import {TskitError} from '../errors.ts';

export function parseJsonBlob<T>(bytes: Buffer, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new TskitError(`${what} is not JSON (${(error as Error).message}): is it a manifest, index or config?`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new TskitError(`${what} is not a JSON object`);
  return value as T;
}
