// What a qemu guest is told about itself and its cluster, in the forms guests read:
//  - NoCloud seed files (cloud-init; LinuxKit's metadata package reads the same from a
//    `cidata` volume): meta-data, user-data, network-config (v2, matched by MAC);
//  - tskit.json, the same facts as one JSON document (also passed through fw_cfg as
//    opt/tskit/metadata.json, readable at /sys/firmware/qemu_fw_cfg/by_name/opt/tskit/metadata.json/raw);
//  - kernel command-line words (`tskit.index=0 tskit.ip=10.77.0.10/24 ...`) for kernel+initrd
//    images, readable from /proc/cmdline by any container.
// Without a user-data file, user-data is LinuxKit's JSON form, which its metadata package
// turns into files: /run/config/tskit/index, .../peers, and so on.

import {linuxkitUserData, metadataJson, type GuestMetadata} from '../../src/run/guest-metadata.ts';

export type {GuestMetadata, GuestNetwork} from '../../src/run/guest-metadata.ts';

export interface SeedFiles {
  'meta-data': string;
  'user-data': string;
  'network-config'?: string;
  'tskit.json': string;
}

/** The NoCloud seed: what cloud-init, LinuxKit's metadata package and our fixture init read. */
export function seedFiles(meta: GuestMetadata, userData?: string): SeedFiles {
  const files: SeedFiles = {
    'meta-data': `instance-id: ${meta.runId}-${meta.index}\nlocal-hostname: ${meta.name}\n`,
    'user-data': userData ?? linuxkitUserData(meta),
    'tskit.json': metadataJson(meta),
  };
  if (meta.network) {
    const lines = ['version: 2', 'ethernets:'];
    if (meta.natMac) lines.push('  nat:', '    match:', `      macaddress: "${meta.natMac}"`, '    dhcp4: true');
    lines.push('  cluster:', '    match:', `      macaddress: "${meta.network.mac}"`, `    addresses: [${meta.network.address}]`);
    files['network-config'] = `${lines.join('\n')}\n`;
  }
  return files;
}

/** x86 Linux takes 2048 bytes of command line; leave room for the image's own. */
const CMDLINE_BUDGET = 1024;

/**
 * Kernel command-line words for the metadata. `tskit.peers` is left out (with the reason
 * returned) when the list would not fit; the guest then reads it from fw_cfg or the seed.
 */
export function cmdlineWords(meta: GuestMetadata): {words: string[]; omitted?: string} {
  const words = [`tskit.run=${meta.runId}`, `tskit.name=${meta.name}`, `tskit.index=${meta.index}`, `tskit.count=${meta.count}`];
  if (!meta.network) return {words};
  words.push(`tskit.ip=${meta.network.address}`, `tskit.mac=${meta.network.mac}`);
  const peers = `tskit.peers=${meta.network.peers.join(',')}`;
  if ([...words, peers].join(' ').length > CMDLINE_BUDGET) return {words, omitted: `tskit.peers (${meta.network.peers.length} addresses) does not fit the kernel command line: read it from fw_cfg opt/tskit/metadata.json`};
  return {words: [...words, peers]};
}

/** The cluster network's addressing: 10.77.0.0/24, member i at .10+i. */
export const CLUSTER_SUBNET = {base: [10, 77, 0], first: 10, prefix: 24};
export const MAX_CLUSTER_SIZE = 240;

export function clusterAddress(index: number): string {
  return `${CLUSTER_SUBNET.base.join('.')}.${CLUSTER_SUBNET.first + index}`;
}

/** Locally administered unicast MACs in qemu's 52:54:00 range; the fourth octet marks the cluster NIC. */
export function clusterMac(index: number): string {
  return `52:54:00:77:${hex((index >> 8) & 0xff)}:${hex(index & 0xff)}`;
}

export const NAT_MAC = '52:54:00:12:34:56';

const hex = (n: number): string => n.toString(16).padStart(2, '0');
