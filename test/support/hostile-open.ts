// Opens one disk image through the one entry point (openDisk), reads all its extents and
// probes it, in a process of its own, and prints one JSON line: what happened, how long it
// took, and the process's peak RSS, so a test can bound time and memory from outside (a
// crash, an abort or a heap blow-up shows as a missing line and a non-zero exit).
// Usage: node test/support/hostile-open.ts FILE [FORMAT]
import {TskitError} from '../../src/errors.ts';
import {openDisk, type InputFormat} from '../../src/formats/decode.ts';

const [path, format] = process.argv.slice(2);
const started = performance.now();
let result: Record<string, unknown>;
try {
  const disk = await openDisk(path!, format ? {format: format as InputFormat} : {});
  try {
    let stored = 0;
    for await (const extent of disk.image.extents()) stored += extent.data.length;
    const probe = await disk.probe();
    result = {ok: true, format: disk.format, variant: disk.variant, size: disk.image.size, stored, boot: probe.boot ?? null, arch: probe.arch ?? null};
  } finally {
    await disk.close();
  }
} catch (error) {
  result = {ok: false, tskit: error instanceof TskitError, message: (error as Error).message};
}
result.ms = Math.round(performance.now() - started);
result.maxRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(`${JSON.stringify(result)}\n`);
