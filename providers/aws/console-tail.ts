// EC2's GetConsoleOutput returns a snapshot of the serial console, not a stream: the whole
// output while it is short, then (Latest=true, Nitro) only its most recent 64 KiB. Polling it
// and printing each byte once, in order, means finding where what we already printed ends in
// each new snapshot. While the console is shorter than the window the answer is exact (the
// snapshot starts at byte 0); once the window slides, the new snapshot is matched against the
// end of what we have seen by the longest overlap. Repetitive output can make the overlap
// ambiguous; the longest one is chosen, which never prints a byte twice but can, in that
// case, drop a repeat. More new output than a window between two polls is a gap, reported.

export const EC2_CONSOLE_WINDOW = 64 * 1024;

export interface TailResult {
  /** Bytes not seen before, in order. */
  fresh: Buffer;
  /** True when the snapshot did not overlap what was seen: bytes were lost between polls. */
  gap: boolean;
}

export class ConsoleTail {
  /** Everything seen while it fits a window: snapshots that start at byte 0 are matched exactly. */
  private head = Buffer.alloc(0);
  private headComplete = true;
  /** The last bytes seen (at least a window's worth), for matching sliding snapshots. */
  private tail = Buffer.alloc(0);
  private readonly window: number;
  seen = 0;

  constructor(window: number = EC2_CONSOLE_WINDOW) {
    this.window = window;
  }

  push(snapshot: Buffer): TailResult {
    if (snapshot.length === 0) return {fresh: Buffer.alloc(0), gap: false};
    // Exact case: the snapshot is the console from its first byte.
    if (this.headComplete && snapshot.length >= this.head.length && snapshot.subarray(0, this.head.length).equals(this.head)) {
      return this.accept(snapshot.subarray(this.head.length), false);
    }
    const overlap = this.longestOverlap(snapshot);
    if (overlap < 0) return this.accept(snapshot, this.seen > 0);
    return this.accept(snapshot.subarray(overlap), false);
  }

  private accept(fresh: Buffer, gap: boolean): TailResult {
    if (fresh.length === 0) return {fresh, gap};
    const copy = Buffer.from(fresh);
    this.seen += copy.length;
    if (this.headComplete && !gap && this.head.length + copy.length <= this.window) this.head = Buffer.concat([this.head, copy]);
    else this.headComplete = false;
    this.tail = Buffer.concat([this.tail, copy]);
    if (this.tail.length > 2 * this.window) this.tail = this.tail.subarray(this.tail.length - this.window);
    return {fresh: copy, gap};
  }

  /**
   * The largest p such that snapshot[0, p) equals the last p bytes seen (p ≤ both lengths);
   * -1 when no suffix of what was seen starts the snapshot. Candidates come from where the
   * last few seen bytes occur in the snapshot, checked from the right.
   */
  private longestOverlap(snapshot: Buffer): number {
    const tail = this.tail;
    if (tail.length === 0) return -1;
    const needle = tail.subarray(Math.max(0, tail.length - 32));
    let from = Math.min(snapshot.length, tail.length) - needle.length;
    for (let tries = 0; from >= 0 && tries < 256; tries++) {
      const at = snapshot.lastIndexOf(needle, from);
      if (at < 0) break;
      const p = at + needle.length;
      if (snapshot.subarray(0, p).equals(tail.subarray(tail.length - p))) return p;
      from = at - 1;
    }
    // What was seen is shorter than the needle's search could prove, or the snapshot is all new.
    return -1;
  }
}
