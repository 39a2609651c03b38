// What a guest is told about itself and its cluster, whatever the provider: one JSON document
// (tskit.json / metadata.json) and, when the user gives no user data of their own, user data
// in LinuxKit's metadata JSON form, which its metadata package turns into files:
// /run/config/tskit/index, .../peers, and so on. Providers add their own channels (qemu: a
// NoCloud seed, fw_cfg and the kernel command line; EC2: the user data itself).

export const METADATA_VERSION = 1;

export interface GuestNetwork {
  /** The guest's own address, CIDR form: 10.77.0.10/24. */
  address: string;
  /** Its NIC on the cluster network. */
  mac: string;
  /** Every member's address (no prefix), by index, the guest's own included. */
  peers: string[];
}

export interface GuestMetadata {
  runId: string;
  name: string;
  index: number;
  count: number;
  network?: GuestNetwork;
  /** qemu: the MAC of the user-mode (NAT) NIC, when there is one: network-config keeps DHCP on it. */
  natMac?: string;
}

export function metadataJson(meta: GuestMetadata): string {
  return `${JSON.stringify({v: METADATA_VERSION, runId: meta.runId, name: meta.name, index: meta.index, count: meta.count, ...(meta.network ? {network: meta.network} : {})})}\n`;
}

/**
 * User data for a provider whose only channel to the guest is the user data (EC2): the user's
 * own when it is not LinuxKit metadata JSON (cloud-config, a script: passed as given), the
 * user's JSON with a `tskit` section added when it is and has none, else tskit's alone.
 */
export function userDataWithMetadata(userData: string | undefined, meta: GuestMetadata): string {
  if (userData === undefined) return linuxkitUserData(meta);
  let parsed: unknown;
  try {
    parsed = JSON.parse(userData);
  } catch {
    return userData;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || 'tskit' in parsed) return userData;
  return `${JSON.stringify({...parsed, ...(JSON.parse(linuxkitUserData(meta)) as object)}, null, 2)}\n`;
}

/** LinuxKit metadata's JSON user-data: each entry becomes a file under /run/config/tskit/. */
export function linuxkitUserData(meta: GuestMetadata): string {
  const file = (content: string) => ({perm: '0644', content});
  const entries: Record<string, {perm: string; content: string}> = {
    'run-id': file(`${meta.runId}\n`),
    name: file(`${meta.name}\n`),
    index: file(`${meta.index}\n`),
    count: file(`${meta.count}\n`),
    'metadata.json': file(metadataJson(meta)),
  };
  if (meta.network) {
    entries.address = file(`${meta.network.address}\n`);
    entries.mac = file(`${meta.network.mac}\n`);
    entries.peers = file(meta.network.peers.map((p) => `${p}\n`).join(''));
  }
  return `${JSON.stringify({tskit: {entries}}, null, 2)}\n`;
}
