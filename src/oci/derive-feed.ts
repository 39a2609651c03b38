// Feeds a download's bytes to BlobDerivers as they arrive, so deriving (a layer's headers,
// say: a whole decompression) overlaps the download instead of following it. A deriver that
// fails or stops reading early is dropped without holding the download up; a download that
// starts over voids what its derivers had.
import {once} from 'node:events';
import {PassThrough} from 'node:stream';
import type {BlobDeriver, Descriptor} from './types.ts';

/** Enough to keep a decompressor busy between two network reads. */
const BUFFERED = 4 * 1024 * 1024;

class Feed {
  readonly kind: string;
  readonly result: Promise<Buffer | undefined>;
  private readonly stream = new PassThrough({highWaterMark: BUFFERED});
  private settled = false;
  private voided = false;

  constructor(deriver: BlobDeriver) {
    this.kind = deriver.kind;
    this.result = Promise.resolve()
      .then(() => deriver.derive(this.stream))
      .catch(() => undefined)
      .finally(() => {
        this.settled = true;
        this.stream.destroy();
      });
  }

  async write(data: Buffer): Promise<void> {
    if (this.settled || this.voided) return;
    if (!this.stream.write(data)) await Promise.race([once(this.stream, 'drain').catch(() => {}), this.result]);
  }

  end(): void {
    if (!this.settled && !this.voided) this.stream.end();
  }

  void(): void {
    this.voided = true;
    this.stream.destroy();
  }

  /** The derived data, unless the feed was voided. */
  async outcome(): Promise<Buffer | undefined> {
    const data = await this.result;
    return this.voided ? undefined : data;
  }
}

export interface DeriveFeeds {
  onData(data: Buffer): Promise<void>;
  onRestart(): void;
  /** After the download verified: each deriver's data (kinds without any are left out). */
  finish(): Promise<Array<{kind: string; data: Buffer}>>;
  /** After a failed download: stops every deriver. */
  abort(): void;
}

export function deriveFeeds(derivers: readonly BlobDeriver[], descriptor: Descriptor): DeriveFeeds | undefined {
  const chosen = derivers.filter((d) => d.applies(descriptor));
  if (chosen.length === 0) return undefined;
  const feeds = chosen.map((d) => new Feed(d));
  return {
    async onData(data) {
      await Promise.all(feeds.map((f) => f.write(data)));
    },
    onRestart() {
      // rare (a registry that ignored a Range request): derive nothing rather than start again
      for (const feed of feeds) feed.void();
    },
    async finish() {
      for (const feed of feeds) feed.end();
      const out: Array<{kind: string; data: Buffer}> = [];
      for (const feed of feeds) {
        const data = await feed.outcome();
        if (data) out.push({kind: feed.kind, data});
      }
      return out;
    },
    abort() {
      for (const feed of feeds) feed.void();
    },
  };
}
