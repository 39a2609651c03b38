// `tskit build` as a library call: resolve every image, then write each requested format
// from the assembled stream. All outputs appear together at the end, or none do.
import {mkdir} from 'node:fs/promises';
import type {Emit} from '../events.ts';
import type {MobyConfig} from '../config/types.ts';
import type {ImageSource, LayoutSource, Platform} from '../oci/types.ts';
import {allResolved, assemble, resolveImages} from './assemble.ts';
import {generatedMtime} from './entry.ts';
import {type Artifact, type BuildFormat, type OutputTarget, writeFormat} from './outputs.ts';
import {StagedFiles} from './staged-files.ts';

export interface BuildRequest {
  config: MobyConfig;
  formats: BuildFormat[];
  target: OutputTarget;
  source: ImageSource;
  /** For `volumes:` with `format: oci` (the image cache). */
  layouts?: LayoutSource;
  platform: Platform;
  /** Directory `files: source:` paths are relative to. */
  cwd: string;
  emit: Emit;
  signal?: AbortSignal;
  /** The merged configuration as `files: metadata: json|yaml` writes it. */
  metadata(format: string): string;
  /** Names a YAML location in errors. */
  where?(path: Array<string | number>): string;
}

export async function build(request: BuildRequest): Promise<Artifact[]> {
  const mtime = generatedMtime();
  const images = resolveImages(request.config, {source: request.source, platform: request.platform, ...(request.layouts ? {layouts: request.layouts} : {})});
  if (!request.target.file) await mkdir(request.target.dir, {recursive: true});
  const staged = new StagedFiles();
  const artifacts: Artifact[] = [];
  try {
    // Each format reads the layers again from the cache: cheaper than holding anything.
    for (const format of request.formats) {
      const entries = assemble(request.config, images, {
        source: request.source,
        ...(request.layouts ? {layouts: request.layouts} : {}),
        platform: request.platform,
        mtime,
        cwd: request.cwd,
        emit: request.emit,
        metadata: request.metadata,
        ...(request.where ? {where: request.where} : {}),
      });
      artifacts.push(...(await writeFormat(format, entries, request.target, {staged, emit: request.emit, ...(request.signal ? {signal: request.signal} : {})})));
      request.signal?.throwIfAborted();
    }
    await allResolved(images);
    await staged.commit();
  } catch (error) {
    await staged.abort();
    throw error;
  }
  for (const artifact of artifacts) {
    request.emit({type: 'artifact.written', path: artifact.path, format: artifact.format, size: artifact.size, sha256: artifact.sha256});
  }
  return artifacts;
}
