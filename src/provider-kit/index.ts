// The provider kit: what every cloud provider needs, written once (see docs/providers.md,
// "How to add a provider"). Disks are opened with src/formats/decode.ts (openDisk), which
// this re-exports with the boot probe so a provider imports one module.
export {openDisk, sniffDiskFormat, formatArticle, INPUT_FORMATS, type DiskSource, type InputFormat, type OpenDiskOptions, type OpenedDisk} from '../formats/decode.ts';
export {probeBoot, type Architecture, type BootMode, type BootProbe, type ReadAt} from '../formats/boot-probe.ts';
export {probeKernel, type KernelProbe} from '../formats/kernel-probe.ts';
export type {DiskExtent, DiskImage} from '../formats/disk.ts';
export {chooseBoot, type BootChoice, type BootChoiceOptions, type BootSpelling} from './boot-choice.ts';
export {proveCredentials, requireTool, type CredentialProof} from './check.ts';
export {droppedNotice, httpRangeReader, pollConsole, RangeReadError, RESTARTED_NOTICE, type ConsoleChunk, type ConsolePollOptions, type RangeReaderOptions} from './console-poll.ts';
export {checkUnchanged, contentName, fileDigest, fileSha256, type ContentNameOptions, type FileDigest} from './digest.ts';
export {diskBlocks, diskRanges, isZero, type DiskBlock, type DiskRange} from './disk-blocks.ts';
export {adoptOrRecord, journalFirst, noJournal, type JournalFirstOptions, type ProviderJournal} from './journal.ts';
export {defaultRetryPolicy, httpRetryKind, isPermanentNetworkError, networkRetryKind, parseRetryAfter, retryDelay, withRetry, type Retryable, type RetryKind, type RetryPolicy, type WithRetryOptions} from './retry.ts';
export {COMMON_SECRET_PATTERNS, redactSecrets, type RedactOptions} from './secrets.ts';
export {checkUserTags, digestValue, isStray, olderThan, readTskitTags, tagKey, tagKeys, tagValue, tskitTags, type StrayFilter, type TagStyle, type TskitTags} from './tags.ts';
export {forEachBounded, progressReporter, type BoundedOptions, type ProgressOptions} from './upload.ts';
export {defineProvider, type ProviderEntry} from '../run/provider-entry.ts';
