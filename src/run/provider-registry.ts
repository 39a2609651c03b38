// Providers by name, for the commands that are not about one provider: `tskit gc` (every
// provider's leftovers), `tskit test` (a manifest naming providers). A provider is one
// folder, providers/<name>/, whose provider.ts default-exports its entry (defineProvider):
// its name, the formats it takes, the schema of its block in a `tskit test` manifest, and how
// to load it. The registry finds those folders itself; nobody lists them by hand. Entries
// load their provider lazily, so a command pays only for the SDKs it uses. A provider from
// elsewhere (an oclif plugin's init hook) joins through registerProvider().
import {existsSync, readdirSync} from 'node:fs';
import {extname} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {TskitError} from '../errors.ts';
import type {Provider} from '../provider.ts';
import type {ProviderEntry} from './provider-entry.ts';

export type {ProviderEntry} from './provider-entry.ts';

const registry = new Map<string, ProviderEntry>();

export function registerProvider(entry: ProviderEntry): void {
  if (!/^[a-z][a-z0-9-]*$/.test(entry.name)) throw new TskitError(`a provider's name is lowercase letters, digits and -, not ${JSON.stringify(entry.name)}`);
  registry.set(entry.name, entry);
}

/** providers/ beside src/ (in the source tree, or dist/ when built): every folder with a provider entry in this module's language. */
async function discover(): Promise<void> {
  const here = fileURLToPath(import.meta.url);
  const root = new URL('../../providers/', import.meta.url);
  const entryFile = `provider${extname(here)}`;
  let folders: string[];
  try {
    folders = readdirSync(root, {withFileTypes: true}).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return;
  }
  for (const folder of folders) {
    const file = fileURLToPath(new URL(`${folder}/${entryFile}`, root));
    if (!existsSync(file)) continue;
    const entry = ((await import(pathToFileURL(file).href)) as {default?: ProviderEntry}).default;
    if (!entry || typeof entry.load !== 'function' || entry.name !== folder) {
      throw new TskitError(`providers/${folder}/${entryFile} must default-export its entry (defineProvider) with name "${folder}"`);
    }
    registerProvider(entry);
  }
}

await discover();

export function providerNames(): string[] {
  return [...registry.keys()].sort();
}

export function providerEntry(name: string): ProviderEntry {
  const entry = registry.get(name);
  if (!entry) throw new TskitError(`unknown provider "${name}" (known: ${providerNames().join(', ')})`, {exitCode: 2});
  return entry;
}

export async function loadProvider(name: string): Promise<Provider<unknown, unknown>> {
  return providerEntry(name).load();
}
