// sha256 of an encoder's output, where runs of zeros are counted rather than passed.
import {createHash} from 'node:crypto';
import {zeros} from './blocks.ts';

export interface Digest {
  update(data: Buffer): void;
  /** `count` zero bytes. */
  zeros(count: number): void;
  digest(): Promise<string>;
  close(): void;
}

export async function createDigest(): Promise<Digest> {
  const hash = createHash('sha256');
  const chunk = zeros(1024 * 1024);
  return {
    update: (data) => hash.update(data),
    zeros(count) {
      for (; count > 0; count -= chunk.length) hash.update(count >= chunk.length ? chunk : chunk.subarray(0, count));
    },
    digest: async () => hash.digest('hex'),
    close() {},
  };
}
