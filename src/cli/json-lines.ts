// The NDJSON form of events every command prints with --json.
import type {TskitEvent} from '../events.ts';

/** Bumped when a field of an existing event changes meaning or goes away; new fields and kinds do not bump it. */
export const EVENT_SCHEMA_VERSION = 1;

/** One NDJSON line: `{"v":1,"time":"...","type":...}` and the event's own fields. */
export function eventToJsonLine(event: TskitEvent, now: Date = new Date()): string {
  return `${JSON.stringify({v: EVENT_SCHEMA_VERSION, time: now.toISOString(), ...event})}\n`;
}
