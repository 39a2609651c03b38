// Flattens image layers into one entry stream, applying OCI whiteouts the way an overlay
// mount would, without ever extracting to disk.
//
// Two passes over the (cached, digest-verified) layer blobs: the first reads headers only
// and builds a tree of the final filesystem; the second streams content, emitting each
// path's final version exactly once, in layer order, with every directory emitted before
// anything inside it. Memory grows with the number of entries, never with their size.
//
// Safety: every name is normalised inside the image root, and a name whose directory part
// runs through a symlink is resolved through it inside the image (chroot semantics), the
// way extraction into a container root would resolve it, so no emitted path ever passes
// through a symlink and no entry can land outside the image.
import {printable, TskitError} from '../errors.ts';
import type {Entry} from './entry.ts';
import {checkPathLength, normalizeImagePath} from './image-path.ts';

export interface LayerInput {
  /** Names the layer in errors, e.g. "layer 2/3 (sha256:…) of docker.io/library/alpine:3.20". */
  what: string;
  /** The layer's entries with names as stored. Called once per pass, so it must give the same entries each time. */
  open(): AsyncIterable<Entry> | Promise<AsyncIterable<Entry>>;
  /** PAX records for the entries this layer contributes (LinuxKit's LINUXKIT.source and .location). */
  pax?: Record<string, string>;
}

export interface FlattenOptions {
  /** mtime for directories that no layer names but that must exist (parents of entries). */
  mtime: number;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_SYMLINKS = 40;

interface Version {
  layer: number;
  ordinal: number;
  /** Header of the final entry (no content), its path the resolved one. */
  entry: Entry;
  /** For a hard link: the version of the file it shares content with. */
  linkTo?: Version;
  /** For a file: how many final paths share its content, itself included. */
  links?: number;
}

interface Node {
  name: string;
  parent: Node | null;
  children: Map<string, Node> | null;
  version: Version | null;
  emitted: boolean;
}

function newNode(name: string, parent: Node | null): Node {
  return {name, parent, children: null, version: null, emitted: false};
}

function pathOf(node: Node): string {
  const parts: string[] = [];
  for (let n: Node | null = node; n && n.parent; n = n.parent) parts.push(n.name);
  return parts.reverse().join('/');
}

const key = (layer: number, ordinal: number) => `${layer}:${ordinal}`;

export async function* flattenLayers(layers: LayerInput[], options: FlattenOptions): AsyncGenerator<Entry> {
  const root = newNode('', null);
  root.emitted = true;
  /** Entries whose directory part ran through a symlink, by layer:ordinal, to their resolved path. */
  const rewrites = new Map<string, string>();

  // ---- pass 1: index ----
  for (let layer = 0; layer < layers.length; layer++) {
    const input = layers[layer]!;
    let ordinal = -1;
    for await (const raw of await input.open()) {
      ordinal++;
      const path = normalizeImagePath(raw.path, input.what);
      if (path === '') continue; // the root itself
      const slash = path.lastIndexOf('/');
      const base = path.slice(slash + 1);
      const parent = resolveDir(root, slash === -1 ? [] : path.slice(0, slash).split('/'), input.what, path);

      if (base === OPAQUE) {
        for (const child of [...(parent.children?.values() ?? [])]) pruneBelow(child, layer);
        continue;
      }
      if (base.startsWith(WHITEOUT)) {
        const hidden = parent.children?.get(base.slice(WHITEOUT.length));
        if (hidden) pruneBelow(hidden, layer);
        continue;
      }

      const node = childOf(parent, base);
      const finalPath = pathOf(node);
      if (finalPath !== path) {
        checkPathLength(finalPath, input.what, `entry ${JSON.stringify(path.slice(0, 40))}... resolved through symlinks to`);
        rewrites.set(key(layer, ordinal), finalPath);
      }
      if (raw.type === 'symlink' || raw.type === 'hardlink') checkPathLength(raw.linkname ?? '', input.what, `the link target of ${JSON.stringify(path.slice(0, 40))}`);
      const entry: Entry = {...raw, path: finalPath};
      delete entry.content;
      const version: Version = {layer, ordinal, entry};

      if (raw.type === 'hardlink') {
        const targetPath = normalizeImagePath(raw.linkname ?? '', `${input.what}: hard link ${path}`);
        const target = lookupResolved(root, targetPath, input.what, path);
        if (!target?.version || target.version.entry.type === 'dir') {
          throw new TskitError(`${input.what}: hard link ${printable(path)} points at ${JSON.stringify(raw.linkname)}, which is not a file in the image at that point`);
        }
        version.linkTo = target.version.linkTo ?? target.version;
      }
      if (raw.type !== 'dir') node.children = null; // a non-directory hides whatever was below it
      node.version = version;
    }
  }

  // Count the links each final file keeps, and group links whose file a later layer replaced
  // or removed: those still own the old content, which pass 2 meets at the old file's place.
  const staleGroups = new Map<string, Version[]>();
  for (const node of walk(root)) {
    const version = node.version;
    if (!version?.linkTo) continue;
    const target = version.linkTo;
    if (target.entry.type !== 'file') continue; // links to symlinks are copied where they stand
    if (isFinal(root, target)) {
      target.links = (target.links ?? 1) + 1;
    } else {
      const group = staleGroups.get(key(target.layer, target.ordinal)) ?? [];
      group.push(version);
      staleGroups.set(key(target.layer, target.ordinal), group);
    }
  }
  /** A stale group's first link becomes the file; the others link to it. */
  const staleLeader = new Map<Version, Version>();
  for (const group of staleGroups.values()) {
    group.sort((a, b) => a.layer - b.layer || a.ordinal - b.ordinal); // the earliest link leads
    for (const member of group) staleLeader.set(member, group[0]!);
  }

  // ---- pass 2: emit ----
  const ensureAncestors = function* (node: Node): Generator<Entry> {
    const chain: Node[] = [];
    for (let n = node.parent; n && !n.emitted; n = n.parent) chain.push(n);
    for (const dir of chain.reverse()) {
      dir.emitted = true;
      yield dir.version ? tagged(dir.version.entry, layers[dir.version.layer]!.pax) : {path: pathOf(dir), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: options.mtime, size: 0};
    }
  };

  for (let layer = 0; layer < layers.length; layer++) {
    const input = layers[layer]!;
    let ordinal = -1;
    for await (const raw of await input.open()) {
      ordinal++;
      const k = key(layer, ordinal);
      const path = rewrites.get(k) ?? normalizeImagePath(raw.path, input.what);
      if (path === '') continue;
      const node = lookupLiteral(root, path);
      const version = node?.version;

      if (node && version && version.layer === layer && version.ordinal === ordinal) {
        if (raw.type === 'dir') {
          if (node.emitted) continue;
          yield* ensureAncestors(node);
          node.emitted = true;
          yield tagged(version.entry, input.pax);
          continue;
        }
        if (version.linkTo) {
          const leader = staleLeader.get(version);
          if (leader === version) continue; // already written as the file itself
          yield* ensureAncestors(node);
          node.emitted = true;
          const target = leader ?? version.linkTo;
          if (target.entry.type === 'symlink') {
            // A hard link to a symlink is a second symlink with the same target.
            yield {...tagged(version.entry, input.pax), type: 'symlink', linkname: target.entry.linkname ?? ''};
          } else {
            yield {...tagged(version.entry, input.pax), linkname: target.entry.path, size: 0};
          }
          continue;
        }
        yield* ensureAncestors(node);
        node.emitted = true;
        const out: Entry = tagged(version.entry, input.pax);
        if (version.links && version.links > 1) out.nlink = version.links;
        if (raw.content) out.content = raw.content;
        yield out;
        continue;
      }

      const group = staleGroups.get(k);
      if (group && raw.type === 'file') {
        const leader = group[0]!;
        const leaderNode = lookupLiteral(root, leader.entry.path)!;
        yield* ensureAncestors(leaderNode);
        leaderNode.emitted = true;
        const out: Entry = {...tagged(raw, input.pax), path: leader.entry.path, type: 'file'};
        delete out.linkname;
        if (group.length > 1) out.nlink = group.length;
        yield out; // the group's other links follow at their own places
      }
      // otherwise: overridden or whited out; the tar reader skips unread content
    }
  }

  for (const node of walk(root)) {
    if (node.version && !node.emitted) {
      throw new TskitError(`${printable(pathOf(node))}: its layer gave different entries on a second read (the blob changed while building)`);
    }
  }
}

function tagged(entry: Entry, pax: Record<string, string> | undefined): Entry {
  return pax ? {...entry, pax} : {...entry};
}

function childOf(parent: Node, name: string): Node {
  parent.children ??= new Map();
  let child = parent.children.get(name);
  if (!child) {
    child = newNode(name, parent);
    parent.children.set(name, child);
  }
  return child;
}

/**
 * Walks directory components from the root, following symlinks inside the image, creating
 * directories no layer named yet. A component that is a file is an error.
 */
function resolveDir(root: Node, components: string[], what: string, entryPath: string): Node {
  // components still to walk, last first: popping and pushing a symlink's target are O(1)
  const pending = components.reverse();
  let node = root;
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      node = node.parent ?? root;
      continue;
    }
    const child = childOf(node, part);
    const type = child.version?.entry.type;
    if (type === 'symlink') {
      if (++hops > MAX_SYMLINKS) throw new TskitError(`${what}: too many levels of symbolic links resolving ${printable(entryPath)}`);
      const target = child.version!.entry.linkname ?? '';
      if (target.startsWith('/')) node = root;
      const parts = target.split('/');
      for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]!);
      continue;
    }
    if (type !== undefined && type !== 'dir') {
      throw new TskitError(`${what}: ${printable(entryPath)} needs ${printable(pathOf(child))} to be a directory, but the image has a ${type} there`);
    }
    node = child;
  }
  return node;
}

/** A hard link's target: directories resolved through symlinks, the last name taken literally. */
function lookupResolved(root: Node, path: string, what: string, entryPath: string): Node | undefined {
  const slash = path.lastIndexOf('/');
  const dir = resolveDir(root, slash === -1 ? [] : path.slice(0, slash).split('/'), what, entryPath);
  return dir.children?.get(path.slice(slash + 1));
}

function lookupLiteral(root: Node, path: string): Node | undefined {
  let node: Node | undefined = root;
  for (const part of path.split('/')) {
    node = node.children?.get(part);
    if (!node) return undefined;
  }
  return node;
}

function isFinal(root: Node, version: Version): boolean {
  return lookupLiteral(root, version.entry.path)?.version === version;
}

/** Removes what layers below `layer` put at and under this node. */
function pruneBelow(node: Node, layer: number): void {
  if (node.children) {
    for (const child of [...node.children.values()]) pruneBelow(child, layer);
  }
  if (node.version && node.version.layer < layer) {
    node.version = null;
  }
  if (!node.version && (!node.children || node.children.size === 0) && node.parent) {
    node.parent.children?.delete(node.name);
  }
}

function* walk(node: Node): Generator<Node> {
  const stack: Node[] = [node];
  while (stack.length > 0) {
    const n = stack.pop()!;
    yield n;
    if (n.children) for (const child of n.children.values()) stack.push(child);
  }
}
