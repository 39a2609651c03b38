// The exit codes `tskit run <provider>` promises, shared by every provider (docs/providers.md).
// 124 and 125 follow timeout(1): 124 timed out, 125 the tool itself could not do its job.

export const ExitCode = {
  /** A --wait-for pattern matched, or (without --wait-for) the guest powered off. */
  ok: 0,
  /** The guest failed: --fail-on matched, kernel panic, reset, or it stopped before --wait-for. */
  guestFailed: 1,
  /** Bad flags or arguments. */
  usage: 2,
  /** --timeout passed without a verdict. */
  timeout: 124,
  /** tskit could not run the guest: hypervisor/cloud missing or failing, teardown failed. */
  providerError: 125,
  // 128+n when a signal stopped the run: 129 SIGHUP, 130 SIGINT, 141 SIGPIPE (stdout closed), 143 SIGTERM (see signals.ts).
} as const;
