// LinuxKit's `--networking tap,NAME` and `bridge,NAME`: the guest's NIC on a tap device the
// host already has, or on a tap that qemu-bridge-helper makes and adds to an existing bridge.
// Both need the host set up first (devices, the helper's ACL), so they are probed before qemu
// starts and a missing piece is named with the command that would provide it.
import {access, constants, readFile, stat} from 'node:fs/promises';
import {join} from 'node:path';

export interface HostNic {
  mode: 'tap' | 'bridge';
  name: string;
}

/** `tap,NAME` / `bridge,NAME` (LinuxKit's syntax); undefined for anything else. */
export function parseHostNic(text: string): HostNic | undefined {
  const m = /^(tap|bridge),([A-Za-z0-9_.:-]{1,15})$/.exec(text);
  return m ? {mode: m[1] as 'tap' | 'bridge', name: m[2]!} : undefined;
}

const HELPERS = ['/usr/lib/qemu/qemu-bridge-helper', '/usr/libexec/qemu-bridge-helper', '/usr/local/libexec/qemu-bridge-helper'];
const BRIDGE_ACL = '/etc/qemu/bridge.conf';

/** Why the host cannot give a guest this NIC, or undefined when it can. */
export async function hostNicProblem(nic: HostNic, sysNet = '/sys/class/net'): Promise<string | undefined> {
  const dev = join(sysNet, nic.name);
  const exists = await stat(dev).then(() => true, () => false);
  if (nic.mode === 'tap') {
    if (!exists) return `--networking tap,${nic.name}: the host has no network device ${nic.name}; create it first (ip tuntap add ${nic.name} mode tap user $USER && ip link set ${nic.name} up)`;
    if (!(await stat(join(dev, 'tun_flags')).then(() => true, () => false))) return `--networking tap,${nic.name}: ${nic.name} is not a tap device`;
    if (!(await access('/dev/net/tun', constants.R_OK | constants.W_OK).then(() => true, () => false))) return `--networking tap,${nic.name}: /dev/net/tun cannot be opened by this user`;
    return undefined;
  }
  if (!exists) return `--networking bridge,${nic.name}: the host has no bridge ${nic.name}; create it first (ip link add ${nic.name} type bridge && ip link set ${nic.name} up)`;
  if (!(await stat(join(dev, 'bridge')).then(() => true, () => false))) return `--networking bridge,${nic.name}: ${nic.name} is not a bridge`;
  let helper: string | undefined;
  for (const candidate of HELPERS) {
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) {
      helper = candidate;
      break;
    }
  }
  if (!helper) return `--networking bridge,${nic.name}: qemu-bridge-helper is not installed (Debian: qemu-system-common)`;
  const helperStat = await stat(helper);
  if (process.getuid?.() !== 0 && (helperStat.mode & 0o4000) === 0) {
    return `--networking bridge,${nic.name}: ${helper} must be setuid root to create taps for a user (chmod u+s ${helper}), or run as root`;
  }
  const acl = await readFile(BRIDGE_ACL, 'utf8').catch(() => undefined);
  if (acl === undefined) return `--networking bridge,${nic.name}: ${BRIDGE_ACL} does not exist, so qemu-bridge-helper allows no bridge; add the line "allow ${nic.name}" to it`;
  if (!aclAllows(acl, nic.name)) return `--networking bridge,${nic.name}: ${BRIDGE_ACL} does not allow ${nic.name}; add the line "allow ${nic.name}" to it`;
  return undefined;
}

/** qemu-bridge-helper's ACL: the last matching allow/deny wins; `include` files are not followed. */
export function aclAllows(acl: string, bridge: string): boolean {
  let allowed = false;
  for (const raw of acl.split('\n')) {
    const [verb, name] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (name !== bridge && name !== 'all') continue;
    if (verb === 'allow') allowed = true;
    else if (verb === 'deny') allowed = false;
  }
  return allowed;
}

/** A locally administered MAC for the instance (qemu's default would be the same for every guest on the bridge). */
export function instanceMac(id: string): string {
  let h = 0x811c9dc5;
  for (const c of id) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  const bytes = [0x02, 0x54, (h >>> 24) & 0xff, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
