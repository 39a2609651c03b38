import {readFile, rename, rm, writeFile} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';
import {Args, Flags} from '@oclif/core';
import {TskitCommand} from '../../cli/command.ts';
import {generatedMtime} from '../../build/entry.ts';
import {TskitError} from '../../errors.ts';
import {metadataIso} from '../../formats/metadata-iso.ts';

export default class MetadataCreate extends TskitCommand {
  static override summary = 'Create an ISO with metadata for the guest (as linuxkit metadata create)';
  static override description = `Writes ISO, an ISO 9660 image whose one file, /config, holds METADATA (or the contents of \
--data-file): what LinuxKit's metadata package reads from a CD, and what \`tskit run qemu --data\` attaches. Times inside are \
SOURCE_DATE_EPOCH (LinuxKit's fixed epoch when unset), so the same metadata gives the same bytes.`;
  static override examples = [
    '<%= config.bin %> metadata create data.iso \'{"hostname": {"perm": "0644", "content": "web-1"}}\'',
    '<%= config.bin %> metadata create data.iso --data-file userdata.json',
  ];
  static override args = {
    iso: Args.string({description: 'the ISO to write', required: true}),
    metadata: Args.string({description: 'the metadata text (or give --data-file)'}),
  };
  static override flags = {
    'data-file': Flags.string({description: 'read the metadata from this file instead'}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(MetadataCreate);
    if ((args.metadata === undefined) === (flags['data-file'] === undefined)) {
      throw new TskitError('give the metadata either as the second argument or with --data-file, not both or neither');
    }
    const content = flags['data-file'] === undefined ? Buffer.from(args.metadata!) : await readData(flags['data-file']);
    const temp = join(dirname(args.iso), `.${basename(args.iso)}.tskit-tmp-${process.pid}`);
    try {
      await writeFile(temp, metadataIso(content, generatedMtime()), {mode: 0o644});
      await rename(temp, args.iso);
    } catch (error) {
      await rm(temp, {force: true});
      throw new TskitError(`${args.iso}: cannot write the ISO: ${(error as Error).message}`);
    }
  }
}

async function readData(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new TskitError(`${path}: cannot read the metadata: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
