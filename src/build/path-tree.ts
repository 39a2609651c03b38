// What each path of an entry stream is so far (directory, symlink, anything else), kept as a
// tree of components so that checking an entry's parents costs one step per component: a set
// of whole path strings hashes every ancestor again, which made a path thousands of
// components deep cost time cubic in its depth.

export type PathKind = 'dir' | 'symlink' | 'other';

interface PathNode {
  kind: PathKind;
  children?: Map<string, PathNode>;
  /** A symlink's target, for messages. */
  target?: string;
}

export interface ParentWalk {
  /** Directories that were not known before (now recorded), shortest first. */
  created: string[];
  /** The first parent that is a symlink (the walk stopped there), and where it points. */
  symlink?: {path: string; target: string};
}

export class PathTree {
  private readonly root: PathNode = {kind: 'dir', children: new Map()};

  /**
   * Walks the directories leading to `path` (clean and relative), recording the ones not
   * known yet as directories, and a parent known as a file as a directory now (a directory
   * entry replaces it). Stops at a parent that is a symlink.
   */
  ensureParents(path: string): ParentWalk {
    const created: string[] = [];
    let node = this.root;
    let start = 0;
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const part = path.slice(start, slash);
      start = slash + 1;
      node.children ??= new Map();
      let child = node.children.get(part);
      if (child?.kind === 'symlink') return {created, symlink: {path: path.slice(0, slash), target: child.target ?? ''}};
      if (!child || child.kind !== 'dir') {
        child = {kind: 'dir', children: new Map()};
        node.children.set(part, child);
        created.push(path.slice(0, slash));
      }
      node = child;
    }
    return {created};
  }

  /** What `path` is now (undefined when unknown), and a symlink's target. */
  get(path: string): {kind: PathKind; target?: string} | undefined {
    const node = this.find(path);
    return node && {kind: node.kind, ...(node.target !== undefined ? {target: node.target} : {})};
  }

  /**
   * Records what `path` is now (its parents recorded by ensureParents). A directory keeps
   * what it holds when it was one already; anything else forgets what was below it.
   */
  set(path: string, kind: PathKind, target?: string): void {
    const slash = path.lastIndexOf('/');
    const parent = slash === -1 ? this.root : this.find(path.slice(0, slash));
    if (!parent || parent.kind !== 'dir') throw new Error(`PathTree.set(${path}): parent not recorded`);
    const name = path.slice(slash + 1);
    parent.children ??= new Map();
    const existing = parent.children.get(name);
    if (kind === 'dir' && existing?.kind === 'dir') return;
    parent.children.set(name, kind === 'dir' ? {kind, children: new Map()} : kind === 'symlink' ? {kind, target: target ?? ''} : {kind});
  }

  private find(path: string): PathNode | undefined {
    let node: PathNode | undefined = this.root;
    let start = 0;
    for (;;) {
      const slash = path.indexOf('/', start);
      const part = path.slice(start, slash === -1 ? undefined : slash);
      node = node.children?.get(part);
      if (!node || slash === -1) return node;
      start = slash + 1;
    }
  }
}
