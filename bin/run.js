#!/usr/bin/env node
// Entry point installed as `tskit`. oclif reads oclif.manifest.json, so only the
// command that runs is imported (cloud SDKs stay unloaded for `--help` and `build`).
import module from 'node:module';
import {homedir} from 'node:os';
import {join} from 'node:path';

// V8's code cache for every module tskit loads (oclif, yaml, undici, ...): compiled once per
// version of each file, later runs start about 20-30 ms sooner. It lives with the user's
// caches, not under $TMPDIR (runs leave nothing there); NODE_COMPILE_CACHE moves it and
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
try {
  module.enableCompileCache?.(process.env.NODE_COMPILE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tskit-compile-cache'));
} catch {
  // no cache: start-up is only slower
}
const {execute} = await import('@oclif/core');

await execute({dir: import.meta.url});
