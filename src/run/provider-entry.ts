// What a provider folder declares (providers/<name>/provider.ts default-exports one): kept
// apart from the registry so an entry can import it while the registry is loading entries.
import type {Schema} from '../config/schema.ts';
import type {Provider} from '../provider.ts';

export interface ProviderEntry {
  /** The word after `tskit push` / `tskit run`; the folder's name for a built-in provider. */
  name: string;
  /** One line for listings (`tskit gc --help`, docs). */
  description?: string;
  /** The artifact formats `push` takes (LinuxKit's names: kernel+initrd, raw-efi, vhd, vmdk, gcp, ...). */
  formats: readonly string[];
  load(): Promise<Provider<unknown, unknown>>;
  /** The run options a `tskit test` manifest may give under the provider's name (a mapping). */
  manifestOptions: Schema;
  /** Turns that block (plain values, already schema-checked) into the provider's RunOpts. */
  runOptions(block: Record<string, unknown>): Promise<unknown>;
  /** The image a manifest names, as the provider wants it (qemu: a path, relative to the manifest's directory). */
  imageId(text: string, manifestDir: string): string;
}

/** A provider folder's entry, typed where it is written (providers/<name>/provider.ts: `export default defineProvider({...})`). */
export function defineProvider<P extends Provider<any, any>>(entry: Omit<ProviderEntry, 'load'> & {load(): Promise<P>}): ProviderEntry {
  return entry as unknown as ProviderEntry;
}

