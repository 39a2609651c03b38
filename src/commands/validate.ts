import {Args, Flags} from '@oclif/core';
import {TskitCommand} from '../cli/command.ts';
import {validateSources} from '../config/load.ts';
import {formatProblem, isError, type ConfigProblem} from '../config/problems.ts';

export default class Validate extends TskitCommand {
  static override summary = 'Check LinuxKit YAML configs without pulling any image.';

  static override description = `Checks each file against LinuxKit's schema and rules: unknown or mistyped fields, duplicate keys \
and service names, volume names and references, image reference syntax, capabilities, rlimits, binds, tmpfs, mounts, device \
and file modes, uid/gid names, files entries. Problems are printed to stderr as FILE:LINE:COL: MESSAGE and the exit status \
is 1 when there is any.

Each file is checked on its own; with --merge they are checked as one config merged in order, as \`tskit build a.yml b.yml\` \
would merge them. FILE may be "-" for stdin or an https:// URL.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %> linuxkit.yml',
    '<%= config.bin %> <%= command.id %> examples/*.yml',
    '<%= config.bin %> <%= command.id %> --merge base.yml extra.yml',
    'cat linuxkit.yml | <%= config.bin %> <%= command.id %> -',
  ];

  static override strict = false;

  static override args = {
    file: Args.string({description: 'config file, "-" for stdin, or an https:// URL', required: true}),
  };

  static override flags = {
    merge: Flags.boolean({description: 'validate all files as one merged config (LinuxKit merge order)'}),
    quiet: Flags.boolean({char: 'q', description: 'print nothing for files without problems'}),
    json: Flags.boolean({description: 'print one JSON object per line: {"type":"problem",...} or {"type":"ok","file":...}'}),
  };

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Validate);
    const files = argv as string[];
    let problems: ConfigProblem[];
    problems = await validateSources(files, {mode: flags.merge ? 'merged' : 'separate'});
    const names = (f: string) => (f === '-' ? '<stdin>' : f);
    const errors = problems.filter(isError);
    const bad = new Set(errors.map((p) => p.file));
    const ok = flags.merge && errors.length > 0 ? [] : files.map(names).filter((f) => !bad.has(f));
    if (flags.json) {
      for (const p of problems) process.stdout.write(JSON.stringify({type: p.warning ? 'warning' : 'problem', ...p}) + '\n');
      for (const f of ok) process.stdout.write(JSON.stringify({type: 'ok', file: f}) + '\n');
    } else {
      for (const p of problems) process.stderr.write(formatProblem(p) + '\n');
      if (!flags.quiet) for (const f of ok) process.stdout.write(`${f}: ok\n`);
    }
    if (errors.length > 0) process.exitCode = 1;
  }
}
