#!/usr/bin/env node
// Entry point installed as `tskit`. oclif reads oclif.manifest.json, so only the
// command that runs is imported (cloud SDKs stay unloaded for `--help` and `build`).
import {execute} from '@oclif/core';

await execute({dir: import.meta.url});
