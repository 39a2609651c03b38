// Test material, preloaded into a tskit run with `node --import`: on exit it writes the
// process's peak resident set size (kB) to $TSKIT_TEST_RSS_FILE, so a test can bound memory.
import {writeFileSync} from 'node:fs';

const out = process.env.TSKIT_TEST_RSS_FILE;
if (out) process.on('exit', () => writeFileSync(out, String(process.resourceUsage().maxRSS)));
