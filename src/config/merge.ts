// Several config files merged into one, in LinuxKit's order (AppendConfig in moby/config.go):
// each later file's non-empty kernel fields replace earlier ones; init, onboot, onshutdown,
// services, files and volumes are appended in file order. Every element remembers which file
// and index it came from, so a path in the merged model leads back to file:line:col.
//
// LinuxKit bug, fixed here: AppendConfig rebuilds its volume lookup from the LAST file only
// (`for k, v := range m1.vols`), so a bind or mount naming a volume declared in an earlier
// file fails with "volume ... not found" although the volume is in the merged list. tskit
// keeps every file's volumes (and so also reports a volume name declared in two files).
import type {SourcePosition, MobyConfig, KernelConfig} from './types.ts';
import type {YNode} from './yaml-tree.ts';

export interface SourceTree {
  /** The source as given (path, URL or "<stdin>"). */
  name: string;
  root: YNode | undefined;
  config: MobyConfig;
}

export type ConfigPath = ReadonlyArray<string | number>;

export interface MergedConfig {
  config: MobyConfig;
  sources: string[];
  /** Where the value at `path` of the merged model was written (its nearest existing ancestor when absent). */
  positionOf(path: ConfigPath): SourcePosition | undefined;
}

type ListKey = 'init' | 'onboot' | 'onshutdown' | 'services' | 'files' | 'volumes';
const LIST_KEYS: ListKey[] = ['init', 'onboot', 'onshutdown', 'services', 'files', 'volumes'];

interface Origin {
  src: number;
  index: number;
}

/** The node at `path` in one file's tree, or its nearest existing ancestor. */
export function nodePosition(root: YNode | undefined, path: ConfigPath): {line: number; col: number} | undefined {
  if (!root) return undefined;
  let node: YNode = root;
  let pos = root.pos;
  for (const p of path) {
    if (typeof p === 'number') {
      if (node.kind !== 'seq' || p < 0 || p >= node.items.length) break;
      node = node.items[p]!;
      pos = node.pos;
    } else {
      if (node.kind !== 'map') break;
      const e = node.entries.find((x) => x.key === p);
      if (!e) break;
      node = e.value;
      pos = node.pos;
    }
  }
  return pos;
}

export function mergeConfigs(trees: SourceTree[]): MergedConfig {
  const config: MobyConfig = {};
  const lists: Record<ListKey, Origin[]> = {init: [], onboot: [], onshutdown: [], services: [], files: [], volumes: []};
  const trustLists: Record<'image' | 'org', Origin[]> = {image: [], org: []};
  const kernelFrom: Partial<Record<keyof KernelConfig | '', number>> = {};

  trees.forEach((t, src) => {
    const c = t.config;
    if (c.kernel) {
      const k = (config.kernel ??= {});
      kernelFrom[''] = src;
      for (const f of ['image', 'cmdline', 'binary'] as const) {
        if (c.kernel[f]) {
          k[f] = c.kernel[f];
          kernelFrom[f] = src;
        }
      }
      for (const f of ['tar', 'ucode'] as const) {
        if (c.kernel[f] !== undefined) {
          k[f] = c.kernel[f];
          kernelFrom[f] = src;
        }
      }
    }
    // tskit's bootloader extension: the last file that names an image wins, as kernel fields do
    if (c.bootloader?.image) config.bootloader = {image: c.bootloader.image};
    for (const key of LIST_KEYS) {
      const items = c[key] as unknown[] | undefined;
      if (!items) continue;
      const target = ((config as Record<string, unknown[]>)[key] ??= []);
      items.forEach((item, index) => {
        target.push(item);
        lists[key].push({src, index});
      });
    }
    // trust is accepted and ignored (LinuxKit's AppendConfig drops it); kept merged for completeness
    if (c.trust) {
      const trust = (config.trust ??= {});
      for (const f of ['image', 'org'] as const) {
        c.trust[f]?.forEach((item, index) => {
          (trust[f] ??= []).push(item);
          trustLists[f].push({src, index});
        });
      }
    }
  });

  const at = (src: number, path: ConfigPath): SourcePosition | undefined => {
    const tree = trees[src];
    const pos = tree && nodePosition(tree.root, path);
    return pos && tree ? {file: tree.name, line: pos.line, col: pos.col} : undefined;
  };

  const positionOf = (path: ConfigPath): SourcePosition | undefined => {
    const [head, second, ...rest] = path;
    if (head === undefined) return trees.length > 0 ? at(0, []) : undefined;
    if (typeof head === 'string' && (LIST_KEYS as string[]).includes(head)) {
      const origins = lists[head as ListKey];
      if (typeof second === 'number' && origins[second]) {
        const o = origins[second];
        return at(o.src, [head, o.index, ...rest]);
      }
      const first = origins[0];
      if (first) return at(first.src, [head]);
    } else if (head === 'kernel') {
      const src = typeof second === 'string' ? (kernelFrom[second as keyof KernelConfig] ?? kernelFrom['']) : kernelFrom[''];
      if (src !== undefined) return at(src, second === undefined ? [head] : [head, second, ...rest]);
    } else if (head === 'trust' && (second === 'image' || second === 'org')) {
      const [index, ...tail] = rest;
      const origins = trustLists[second];
      const o = typeof index === 'number' ? origins[index] : origins[0];
      if (o) return at(o.src, typeof index === 'number' ? ['trust', second, o.index, ...tail] : ['trust', second]);
    }
    // anything else: the first file that has the top-level key, else the first file
    const holder = trees.findIndex((t) => t.root?.kind === 'map' && t.root.entries.some((e) => e.key === head));
    return at(holder >= 0 ? holder : 0, holder >= 0 ? path : []);
  };

  return {config, sources: trees.map((t) => t.name), positionOf};
}
