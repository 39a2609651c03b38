// What every container encoder is: a function from a DiskImage to the pieces of its file,
// in file order. encode.ts picks one and writes its pieces through a FileSink.
import type {DiskImage} from './disk.ts';
import type {Piece} from './file-sink.ts';

export interface EncodeContext {
  /** The output file's name (the VMDK descriptor names its extent). */
  name: string;
  /** SOURCE_DATE_EPOCH (or LinuxKit's epoch): the only time a format records. */
  epoch: number;
  /** Deflate level for the compressed formats (vmdk, gcp). */
  level: number;
  signal?: AbortSignal;
  /** Virtual bytes of the disk consumed so far, in the first pass (scan) of a two-pass encoder or the one that writes. */
  progress(offset: number, phase?: 'scan' | 'write'): void;
}

export type Encoder = (image: DiskImage, context: EncodeContext) => AsyncIterable<Piece>;
