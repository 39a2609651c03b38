// Ctrl-C and SIGTERM for a command's work: they abort the work's signal, the work stops and
// removes what it had half-written, and the command exits 130 or 143 with "interrupted by".
import {TskitError} from '../errors.ts';

/** `abort` may be made beforehand, so that what the work uses (a registry client) can hold its signal. */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>, abort = new AbortController()): Promise<T> {
  const onSignal = (signal: NodeJS.Signals) => abort.abort(new TskitError(`interrupted by ${signal}`, {exitCode: signal === 'SIGINT' ? 130 : 143}));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(abort.signal);
  } catch (error) {
    if (abort.signal.aborted && abort.signal.reason instanceof TskitError) throw abort.signal.reason;
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
