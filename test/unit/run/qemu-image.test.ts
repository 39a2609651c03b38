// How `tskit run qemu` reads its PATH and flags and builds qemu's command line, against real
// files and real qemu-img (its disks are the formats qemu will be asked to open).
import {execFileSync} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {defaultCpuModel, optionValue, qemuArgs, type QemuPlan} from '../../../providers/qemu/args.ts';
import {prepareDisks} from '../../../providers/qemu/disks.ts';
import {mbrNeedsUefi, resolveImage} from '../../../providers/qemu/image.ts';
import {parseDiskSpec, parsePublish} from '../../../providers/qemu/options.ts';
import {qemuProvider} from '../../../providers/qemu/index.ts';
import type {TskitEvent} from '../../../src/events.ts';
import {makeBootIso} from '../../support/initrd-bootdisk.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tskit-test-qemu-image-'));
});
afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

async function kernelInitrd(prefix: string, cmdline?: string): Promise<void> {
  await writeFile(`${prefix}-kernel`, 'k');
  await writeFile(`${prefix}-initrd.img`, 'i');
  if (cmdline !== undefined) await writeFile(`${prefix}-cmdline`, cmdline);
}

function mbr(bootCode: boolean, partitionType: number): Buffer {
  const sector = Buffer.alloc(1024);
  if (bootCode) sector.fill(0x90, 0, 100);
  sector[446 + 4] = partitionType;
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

describe('resolveImage', () => {
  it('takes a kernel+initrd prefix, any of its files, or its directory', async () => {
    const prefix = join(dir, 'ki', 'hello');
    await mkdir(join(dir, 'ki'));
    await kernelInitrd(prefix, 'console=ttyS0   quiet\n');
    for (const path of [prefix, `${prefix}-kernel`, `${prefix}-initrd.img`, `${prefix}-cmdline`, join(dir, 'ki')]) {
      expect(await resolveImage(path), path).toMatchObject({kind: 'kernel+initrd', name: 'hello', kernel: `${prefix}-kernel`, initrd: `${prefix}-initrd.img`, cmdline: 'console=ttyS0 quiet', needsUefi: false});
    }
  });

  it('takes the tar-kernel-initrd layout (kernel, initrd.img, cmdline) in a directory', async () => {
    const d = join(dir, 'tki');
    await mkdir(join(d, 'boot'), {recursive: true});
    await writeFile(join(d, 'boot/kernel'), 'k');
    await writeFile(join(d, 'boot/initrd.img'), 'i');
    expect(await resolveImage(d)).toMatchObject({kind: 'kernel+initrd', name: 'tki', kernel: join(d, 'boot/kernel'), cmdline: 'console=ttyS0'});
  });

  it('says what is missing', async () => {
    await expect(resolveImage(join(dir, 'nothing'))).rejects.toThrow(/no such image .*nothing-kernel/);
    await writeFile(join(dir, 'half-kernel'), 'k');
    await expect(resolveImage(join(dir, 'half'))).rejects.toThrow(/initrd .*half-initrd.img is missing/);
    const two = join(dir, 'two');
    await mkdir(two);
    await kernelInitrd(join(two, 'a'));
    await kernelInitrd(join(two, 'b'));
    await expect(resolveImage(two)).rejects.toThrow(/several kernels \(a, b\)/);
  });

  it('tells disk formats by magic first, extension second', async () => {
    for (const format of ['qcow2', 'vpc', 'vhdx', 'vmdk']) {
      const path = join(dir, `disk-${format}.img`);
      execFileSync('qemu-img', ['create', '-q', '-f', format, path, '8M']);
      expect(await resolveImage(path), format).toMatchObject({kind: 'disk', format, media: 'disk'});
    }
    // A fixed VHD carries its footer only at the end.
    const fixed = join(dir, 'fixed.vhd');
    execFileSync('qemu-img', ['create', '-q', '-f', 'vpc', '-o', 'subformat=fixed,force_size=on', fixed, '8M']);
    expect(await resolveImage(fixed)).toMatchObject({format: 'vpc'});
    const raw = join(dir, 'plain.raw');
    await writeFile(raw, mbr(true, 0x83));
    expect(await resolveImage(raw)).toMatchObject({format: 'raw', media: 'disk', needsUefi: false, name: 'plain'});
  });

  it('boots an ISO as a CD, under UEFI when its El Torito catalog has only EFI entries', async () => {
    const iso = join(dir, 'x.iso');
    const bytes = Buffer.alloc(0x9000);
    bytes.write('CD001', 0x8001, 'latin1');
    await writeFile(iso, bytes);
    expect(await resolveImage(iso)).toMatchObject({kind: 'disk', format: 'raw', media: 'cdrom', needsUefi: false});
    await makeBootIso(join(dir, 'bios.bin'), 'x');
    expect(await resolveImage(join(dir, 'bios.bin'))).toMatchObject({media: 'cdrom', needsUefi: false});
    await makeBootIso(join(dir, 'efi.bin'), 'x', 0xef);
    expect(await resolveImage(join(dir, 'efi.bin'))).toMatchObject({media: 'cdrom', needsUefi: true, uefiReason: 'the ISO has only EFI boot entries'});
  });

  it('sees when a disk can only boot under UEFI', async () => {
    expect(mbrNeedsUefi(mbr(false, 0xee), Buffer.from('EFI PART'))).toMatch(/no BIOS boot code/);
    expect(mbrNeedsUefi(mbr(false, 0xef), Buffer.alloc(8))).toMatch(/EFI/);
    expect(mbrNeedsUefi(mbr(true, 0xee), Buffer.from('EFI PART'))).toBeUndefined();
    expect(mbrNeedsUefi(mbr(false, 0x83), Buffer.alloc(8))).toBeUndefined();
    const efi = join(dir, 'gpt.img');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', efi, '8M']);
    const disk = mbr(false, 0xee);
    disk.write('EFI PART', 512, 'latin1');
    execFileSync('dd', [`of=${efi}`, 'conv=notrunc', 'status=none'], {input: disk});
    expect(await resolveImage(efi)).toMatchObject({needsUefi: true});
    const named = join(dir, 'thing-efi.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', named, '8M']);
    expect(await resolveImage(named)).toMatchObject({needsUefi: true, uefiReason: 'its name ends in -efi', name: 'thing'});
    expect(await resolveImage(join(dir, 'disk-qcow2.img'), 'qcow2-efi')).toMatchObject({needsUefi: true});
  });
});

describe('flag syntaxes', () => {
  it('parses --disk like LinuxKit', () => {
    expect(parseDiskSpec('file=a.qcow2,size=2G,format=qcow2')).toEqual({file: 'a.qcow2', size: 2 * 2 ** 30, format: 'qcow2'});
    expect(parseDiskSpec('size=512')).toEqual({size: 512 * 2 ** 20});
    expect(parseDiskSpec('data.img')).toEqual({file: 'data.img'});
    expect(() => parseDiskSpec('file=a,colour=red')).toThrow(/unknown key "colour"/);
    expect(() => parseDiskSpec('size=big')).toThrow(/size/);
  });

  it('parses --publish', () => {
    expect(parsePublish('8080:80')).toEqual({protocol: 'tcp', hostAddress: '', hostPort: 8080, guestPort: 80});
    expect(parsePublish('127.0.0.1:5353:53/udp')).toEqual({protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53});
    expect(parsePublish('localhost:2222:22/tcp')).toMatchObject({hostAddress: '127.0.0.1'});
    for (const bad of ['80', '0:80', '8080:70000', '8080:80/sctp', 'a:b']) expect(() => parsePublish(bad), bad).toThrow(/--publish/);
  });
});

describe('qemuArgs', () => {
  const base: QemuPlan = {
    id: 'tskit-qemu-abcdef',
    image: {kind: 'kernel+initrd', name: 'hello', kernel: '/o/hello-kernel', initrd: '/o/hello-initrd.img', cmdline: 'console=ttyS0', needsUefi: false},
    accel: 'tcg',
    cpu: defaultCpuModel('tcg'),
    cpus: 2,
    memMiB: 512,
    machine: 'q35',
    extraCmdline: 'tskit.test=1',
    disks: [],
    networking: 'none',
    publish: [],
  };
  const after = (args: string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

  it('boots a kernel+initrd with the extra command line, no reboot, console on stdio, QMP on fd 3', () => {
    const args = qemuArgs(base);
    expect(after(args, '-append')).toEqual(['console=ttyS0 tskit.test=1']);
    expect(after(args, '-kernel')).toEqual(['/o/hello-kernel']);
    expect(after(args, '-accel')).toEqual(['tcg']);
    expect(after(args, '-cpu')).toEqual(['qemu64']);
    expect(after(args, '-smp')).toEqual(['2']);
    expect(after(args, '-m')).toEqual(['512']);
    expect(args).toContain('-no-reboot');
    expect(args).toContain('-nodefaults');
    expect(after(args, '-chardev')).toEqual(['stdio,id=console,signal=off', 'socket,id=qmp,fd=3']);
    expect(args).not.toContain('-netdev');
    expect(args).not.toContain('-bios');
  });

  it('uses KVM with the host CPU, OVMF as -bios, and user networking with forwards and no option ROM', () => {
    const args = qemuArgs({...base, accel: 'kvm', cpu: defaultCpuModel('kvm'), firmware: '/usr/share/ovmf/OVMF.fd', networking: 'user', publish: [parsePublish('8080:80'), parsePublish('127.0.0.1:5353:53/udp')]});
    expect(after(args, '-cpu')).toEqual(['host']);
    expect(after(args, '-bios')).toEqual(['/usr/share/ovmf/OVMF.fd']);
    expect(after(args, '-netdev')).toEqual(['user,id=net0,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-:53']);
    expect(after(args, '-device')).toContain('virtio-net-pci,netdev=net0,romfile=');
  });

  it('attaches disk images by format, ISOs as CDs, and escapes commas in paths', () => {
    const disk = qemuArgs({...base, image: {kind: 'disk', name: 'd', path: '/o/a,b.qcow2', format: 'qcow2', media: 'disk', needsUefi: false}, disks: [{path: '/t/disk0.qcow2', format: 'qcow2', created: true, temporary: true}]});
    expect(after(disk, '-drive')).toEqual(['if=none,id=boot,format=qcow2,file=/o/a,,b.qcow2', 'if=none,id=disk0,format=qcow2,file=/t/disk0.qcow2']);
    expect(after(disk, '-device')).toEqual(expect.arrayContaining(['virtio-blk-pci,drive=boot,bootindex=0', 'virtio-blk-pci,drive=disk0']));
    expect(disk).not.toContain('-kernel');
    const iso = qemuArgs({...base, image: {kind: 'disk', name: 'c', path: '/o/c.iso', format: 'raw', media: 'cdrom', needsUefi: false}});
    expect(after(iso, '-drive')).toEqual(['if=none,id=boot,media=cdrom,readonly=on,format=raw,file=/o/c.iso']);
    expect(after(iso, '-device')).toContain('ide-cd,drive=boot,bootindex=0');
    expect(optionValue('a,b,,c')).toBe('a,,b,,,,c');
  });
});

describe('prepareDisks', () => {
  it('creates temporary and missing named disks with qemu-img, and attaches existing ones', async () => {
    const temp = join(dir, 'vmtemp');
    await mkdir(temp);
    const existing = join(dir, 'existing.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', existing, '4M']);
    const named = join(dir, 'named.vhdx');
    const events: TskitEvent[] = [];
    const disks = await prepareDisks([{size: 64 * 2 ** 20}, {file: named, size: 32 * 2 ** 20}, {file: existing}], temp, 'qemu-img', (e) => events.push(e));
    expect(disks).toEqual([
      {path: join(temp, 'disk0.qcow2'), format: 'qcow2', created: true, temporary: true},
      {path: named, format: 'vhdx', created: true, temporary: false},
      {path: existing, format: 'raw', created: false, temporary: false},
    ]);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(temp, 'disk0.qcow2')], {encoding: 'utf8'})) as {format: string; 'virtual-size': number};
    expect(info).toMatchObject({format: 'qcow2', 'virtual-size': 64 * 2 ** 20});
    expect(existsSync(named)).toBe(true);
    await expect(prepareDisks([{file: join(dir, 'x.qcow2'), format: 'nonsense'}], temp, 'qemu-img', () => {})).rejects.toThrow(/cannot create .*x.qcow2/);
  });
});

describe('qemuProvider.check and push', () => {
  it('names what is missing and how to install it', async () => {
    await expect(qemuProvider.check({qemuBinary: 'qemu-system-nonexistent'})).rejects.toThrow(/qemu-system-nonexistent not found; install it \(Debian\/Ubuntu: apt-get install qemu-system-x86/);
    await expect(qemuProvider.check({uefi: true, firmware: join(dir, 'no-OVMF.fd')})).rejects.toThrow(/cannot be read/);
    await expect(qemuProvider.check({networking: 'none', publish: [parsePublish('80:80')]})).rejects.toThrow(/--publish needs networking/);
    await expect(qemuProvider.check({disks: [{size: 1}], qemuImgBinary: 'qemu-img-nonexistent'})).rejects.toThrow(/qemu-img-nonexistent/);
    await expect(qemuProvider.check({uefi: true})).resolves.toBeUndefined();
  });

  it('push hands back the absolute local path', async () => {
    expect(await qemuProvider.push({path: 'out/x-efi.qcow2', format: 'qcow2-efi'})).toMatchObject({provider: 'qemu', id: join(process.cwd(), 'out/x-efi.qcow2')});
  });
});
