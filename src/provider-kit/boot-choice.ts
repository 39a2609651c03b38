// A pushed image's boot mode and architecture: what the user said (--boot, --arch) wins;
// otherwise what the disk says (src/formats/boot-probe.ts). A flag that contradicts the disk
// is warned about, not refused (the user may know better), and the evidence is logged at
// debug level. Each cloud spells both its own way, so the caller passes its spelling.
import type {Emit} from '../events.ts';
import type {Architecture, BootMode, BootProbe} from '../formats/boot-probe.ts';

export interface BootSpelling<B extends string, A extends string> {
  boot: Record<BootMode, B>;
  /** Architectures the cloud runs (one it lacks reads as unknown). */
  arch: Partial<Record<Architecture, A>>;
}

export interface BootChoiceOptions<B extends string, A extends string> {
  /** The probe's answer; undefined when the disk cannot be read (then only the flags count). */
  probe: BootProbe | undefined;
  /** The file's base name, for the debug line. */
  name: string;
  boot?: B;
  arch?: A;
  spell: BootSpelling<B, A>;
  emit: Emit;
}

export interface BootChoice<B extends string, A extends string> {
  boot?: B;
  arch?: A;
  /** The probe's evidence, joined: for the caller's error message when something is still unknown. */
  said: string;
}

export function chooseBoot<B extends string, A extends string>(options: BootChoiceOptions<B, A>): BootChoice<B, A> {
  const {probe, spell, emit} = options;
  const probedBoot = probe?.boot ? spell.boot[probe.boot] : undefined;
  const probedArch = probe?.arch ? spell.arch[probe.arch] : undefined;
  const said = probe?.evidence.join(', ') ?? '';
  if (options.boot && probedBoot && options.boot !== probedBoot) emit({type: 'log', level: 'warn', message: `--boot ${options.boot} but the image looks ${probedBoot} (${said})`});
  if (options.arch && probedArch && options.arch !== probedArch) emit({type: 'log', level: 'warn', message: `--arch ${options.arch} but the image looks ${probedArch} (${said})`});
  const boot = options.boot ?? probedBoot;
  const arch = options.arch ?? probedArch;
  if (probe && boot && arch && (!options.boot || !options.arch)) emit({type: 'log', level: 'debug', message: `${options.name}: boot mode ${boot}, architecture ${arch} (${said})`});
  return {...(boot ? {boot} : {}), ...(arch ? {arch} : {}), said};
}
