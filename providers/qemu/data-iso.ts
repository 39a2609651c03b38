// `run qemu --data TEXT` / `--data-file FILE`, as LinuxKit's: the metadata goes into the
// instance's temp dir as LinuxKit's metadata ISO (one file, /config), attached as a CD.
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {generatedMtime} from '../../src/build/entry.ts';
import {TskitError} from '../../src/errors.ts';
import {metadataIso} from '../../src/formats/metadata-iso.ts';

export async function writeDataIso(data: {text: string} | {file: string}, dir: string): Promise<string> {
  let content: Buffer;
  if ('text' in data) content = Buffer.from(data.text);
  else {
    try {
      content = await readFile(data.file);
    } catch (error) {
      throw new TskitError(`--data-file ${data.file}: cannot read it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {exitCode: 2});
    }
  }
  const path = join(dir, 'data.iso');
  await writeFile(path, metadataIso(content, generatedMtime()), {mode: 0o600});
  return path;
}
