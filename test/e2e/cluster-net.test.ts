// Two VMs of one cluster find each other: each reads its address and its peers' from the
// metadata tskit gives it (here the kernel command line, readable by any container; the
// NoCloud seed volume is mounted and read too), an
// onboot container with `net: host` puts the address on the NIC with the MAC it was told, and
// a busybox nc service sends a message from VM 1 to VM 0 over the cluster's shared segment;
// VM 0 prints what it received. No NAT NIC (--networking none): the only way between them is
// tskit's switch.
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest';
import {ensureBuilt, tskit} from '../support/cli.ts';

const mirror = inject('tskitMirror');
let work: string;

// Markers are assembled at run time ("$m"), so no config or command line holds them.
const yaml = `kernel:
  image: localhost:5000/tskit/kernel:6.1
  cmdline: "console=ttyS0 panic=1"
init:
  - localhost:5000/tskit/init:1
  - localhost:5000/tskit/runc:1
onboot:
  - name: seed
    image: localhost:5000/tskit/busybox:1
    readonly: true
    capabilities: [CAP_SYS_ADMIN]
    binds: ["/dev:/dev"]
    devices:
      - path: all
        type: b
    tmpfs: ["/mnt"]
    # iocharset: the fixture kernel has nls_utf8 but not Debian's default nls_ascii
    command:
      - /bin/sh
      - -c
      - |
        dev=$(findfs LABEL=CIDATA) && mount -t vfat -o ro,iocharset=utf8 "$dev" /mnt && echo "seed: $(grep local-hostname /mnt/meta-data) $(grep -c addresses /mnt/network-config)"
  - name: netconf
    image: localhost:5000/tskit/busybox:1
    net: host
    readonly: true
    capabilities: [CAP_NET_ADMIN]
    command:
      - /bin/sh
      - -c
      - |
        for w in $(cat /proc/cmdline); do case $w in tskit.ip=*) ip=\${w#*=};; tskit.mac=*) mac=\${w#*=};; esac; done
        for d in /sys/class/net/*; do [ "$(cat $d/address)" = "$mac" ] && dev=\${d##*/}; done
        ip link set "$dev" up && ip addr add "$ip" dev "$dev" && echo "netconf: $dev $ip"
services:
  - name: exchange
    image: localhost:5000/tskit/busybox:1
    net: host
    readonly: true
    command:
      - /bin/sh
      - -c
      - |
        for w in $(cat /proc/cmdline); do case $w in tskit.index=*) index=\${w#*=};; tskit.peers=*) peers=\${w#*=};; esac; done
        first=\${peers%%,*}
        m=OK
        if [ "$index" = 0 ]; then
          got=$(nc -l -p 7777)
          echo "EXCHANGE-$m received [$got]"
        else
          i=0
          while [ $i -lt 120 ]; do
            if echo "greetings from $index" | nc -w 2 "$first" 7777; then echo "EXCHANGE-$m sent to $first"; break; fi
            i=$((i + 1)); sleep 1
          done
        fi
`;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tskit-cluster-net-'));
  await mkdir(join(work, 'tmp'));
});
afterAll(async () => {
  await rm(work, {recursive: true, force: true});
});

describe('a cluster network', () => {
  it('carries a message from one VM to another (busybox nc over the shared segment)', async () => {
    const file = join(work, 'exchange.yml');
    await writeFile(file, yaml);
    const env = {TSKIT_CACHE: join(work, 'cache'), TSKIT_STATE: join(work, 'state'), TMPDIR: join(work, 'tmp')};
    const built = await tskit(['build', '--mirror', mirror, '--format', 'kernel+initrd', '--name', 'pair', '--dir', work, file], {env});
    expect(built.code, built.stderr).toBe(0);
    const consoles = join(work, 'consoles');
    const r = await tskit(
      ['run', 'qemu', '--count', '2', '--networking', 'none', '--mem', '512', '--accel', 'tcg', '--wait-for', 'EXCHANGE-OK', '--fail-on', 'netconf failed|exited [1-9]', '--timeout', '150s', '--console-dir', consoles, join(work, 'pair')],
      {env, timeout: 200_000},
    );
    expect(r.code, `${r.stderr}\n${r.stdout.slice(-3000)}`).toBe(0);
    const first = await readFile(join(consoles, 'pair-0.log'), 'utf8');
    const second = await readFile(join(consoles, 'pair-1.log'), 'utf8');
    // the NoCloud seed volume (FAT32, CIDATA) is found by its label and read in the guest
    expect(first).toMatch(/^seed: local-hostname: pair-0 1\r?$/m);
    expect(second).toMatch(/^seed: local-hostname: pair-1 1\r?$/m);
    expect(first).toMatch(/^netconf: eth0 10\.77\.0\.10\/24\r?$/m);
    expect(second).toMatch(/^netconf: eth0 10\.77\.0\.11\/24\r?$/m);
    expect(second).toMatch(/^EXCHANGE-OK sent to 10\.77\.0\.10\r?$/m);
    expect(first).toMatch(/^EXCHANGE-OK received \[greetings from 1\]\r?$/m);
    expect(r.stdout).toMatch(/^pair-0\| EXCHANGE-OK received \[greetings from 1\]\r?$/m);
  });
});
