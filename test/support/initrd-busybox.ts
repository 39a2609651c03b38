// Small test initrds made without tskit's own build: busybox-static from the fixture debs,
// a shell /init, a /dev/console node, optional kernel modules, packed with `cpio -H newc`
// and gzip. Paired with the fixture Debian cloud kernel they boot to a shell script in
// about 2 s under TCG. Test material, not product.
import {execFileSync} from 'node:child_process';
import {existsSync, readdirSync} from 'node:fs';
import {chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const debs = join(repoRoot, '.fixtures/debs');

/** Downloads and unpacks the fixture debs when they are not there yet (idempotent). */
export function ensureFixtureDebs(): void {
  if (existsSync(join(debs, 'linux-image/boot')) && existsSync(join(debs, 'busybox-static/bin/busybox'))) return;
  execFileSync('bash', [join(repoRoot, 'test/fixtures/debs.sh')], {stdio: 'inherit'});
}

/** The fixture Debian cloud kernel (vmlinuz). */
export function fixtureKernel(): string {
  ensureFixtureDebs();
  const boot = join(debs, 'linux-image/boot');
  const kernel = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
  if (!kernel) throw new Error(`no vmlinuz in ${boot}`);
  return join(boot, kernel);
}

function modulesDir(): string {
  const base = join(debs, 'linux-image/lib/modules');
  return join(base, readdirSync(base)[0]!, 'kernel');
}

/** What virtio-net needs in the fixture kernel, in load order (virtio_net and friends are modules there). */
export const virtioNetModules = [
  'drivers/virtio/virtio_ring',
  'drivers/virtio/virtio',
  'drivers/virtio/virtio_pci_legacy_dev',
  'drivers/virtio/virtio_pci_modern_dev',
  'drivers/virtio/virtio_pci',
  'net/core/failover',
  'drivers/net/net_failover',
  'drivers/net/virtio_net',
];

/** virtio-blk for --disk tests. */
export const virtioBlkModules = [
  'drivers/virtio/virtio_ring',
  'drivers/virtio/virtio',
  'drivers/virtio/virtio_pci_legacy_dev',
  'drivers/virtio/virtio_pci_modern_dev',
  'drivers/virtio/virtio_pci',
  'drivers/block/virtio_blk',
];

export interface InitrdOptions {
  /** Shell run as /init after busybox is installed and /proc, /sys, /dev are mounted. */
  script: string;
  /** Modules (paths under lib/modules/<version>/kernel, no .ko) loaded in this order before the script. */
  modules?: readonly string[];
  /** Extra files: path in the initrd -> content. */
  files?: Record<string, string>;
}

/** Writes a gzip'd newc initrd to `output`. */
export async function makeBusyboxInitrd(output: string, options: InitrdOptions): Promise<void> {
  ensureFixtureDebs();
  const root = await mkdtemp(join(tmpdir(), 'tskit-test-initrd-'));
  try {
    for (const dir of ['bin', 'sbin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'lib/modules']) await mkdir(join(root, dir), {recursive: true});
    await copyFile(join(debs, 'busybox-static/bin/busybox'), join(root, 'bin/busybox'));
    await chmod(join(root, 'bin/busybox'), 0o755);
    // The kernel opens /dev/console before init runs; without the node init has no stdout.
    execFileSync('mknod', ['-m', '600', join(root, 'dev/console'), 'c', '5', '1']);
    const modules = options.modules ?? [];
    for (const m of modules) await copyFile(join(modulesDir(), `${m}.ko`), join(root, 'lib/modules', `${m.split('/').pop()}.ko`));
    for (const [path, content] of Object.entries(options.files ?? {})) {
      await mkdir(dirname(join(root, path)), {recursive: true});
      await writeFile(join(root, path), content);
    }
    const init = [
      '#!/bin/busybox sh',
      '/bin/busybox --install -s /bin',
      'mount -t devtmpfs dev /dev 2>/dev/null',
      'mount -t proc proc /proc',
      'mount -t sysfs sys /sys',
      ...modules.map((m) => `insmod /lib/modules/${m.split('/').pop()}.ko`),
      options.script,
      '',
    ].join('\n');
    await writeFile(join(root, 'init'), init, {mode: 0o755});
    execFileSync('sh', ['-c', `cd "$1" && find . | sort | cpio -o -H newc --quiet | gzip -1 > "$2"`, 'sh', root, resolve(output)]);
  } finally {
    await rm(root, {recursive: true, force: true});
  }
}

/**
 * Writes a kernel+initrd image as tskit builds it: DIR/NAME-kernel (a link to the fixture
 * kernel), DIR/NAME-initrd.img and DIR/NAME-cmdline. Returns the prefix DIR/NAME.
 */
export async function makeKernelInitrdImage(dir: string, name: string, options: InitrdOptions & {cmdline?: string}): Promise<string> {
  await mkdir(dir, {recursive: true});
  const prefix = join(dir, name);
  await rm(`${prefix}-kernel`, {force: true});
  await symlink(fixtureKernel(), `${prefix}-kernel`);
  await makeBusyboxInitrd(`${prefix}-initrd.img`, options);
  await writeFile(`${prefix}-cmdline`, `${options.cmdline ?? 'console=ttyS0'}\n`);
  return prefix;
}
