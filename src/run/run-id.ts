// Run ids name one `tskit run`/`tskit test` run everywhere it leaves a trace: the journal file,
// cloud tags and labels (`tskit:run-id`), NDJSON events, JUnit properties. Lower-case letters,
// digits and dashes only, at most 63 characters, so every cloud's label rules accept them;
// they sort by start time (UTC) and end in random letters so two runs in one second differ.
import {randomBytes} from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function randomSuffix(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // 256 % 36 leaves a tiny bias; these are names, not secrets.
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

/** `tskit-20261127-205319-k3x9q2` */
export function newRunId(now: Date = new Date()): string {
  const iso = now.toISOString();
  return `tskit-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}-${randomSuffix(6)}`;
}

/** When a run id says its run started, or undefined for ids tskit did not make. */
export function runIdTime(runId: string): Date | undefined {
  const m = /^tskit-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-[a-z0-9]+$/.exec(runId);
  return m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : undefined;
}
