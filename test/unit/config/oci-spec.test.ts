// config.json / runtime.json for image entries, with expectations derived by hand from
// LinuxKit's ConfigToOCI (golden.test.ts compares with LinuxKit's own output as well).
import {describe, expect, it} from 'vitest';
import {checkSources} from '../../../src/config/load.ts';
import {containerIdMap} from '../../../src/config/ids.ts';
import {ALL_CAPABILITIES} from '../../../src/config/capabilities.ts';
import {bundleConfig, BundleConfigError, formatRuntimeJson, formatSpecJson, mergeUnique, rootfsMounts, type BundleConfig} from '../../../src/build/oci-spec.ts';
import type {ContainerConfig} from '../../../src/oci/types.ts';

const LABEL = 'org.mobyproject.config';

/** Loads a config (must be valid) and builds the bundle config of the container `name`. */
function bundle(yaml: string, name: string, image?: ContainerConfig): BundleConfig {
  const {loaded, problems} = checkSources([{name: 'c.yml', text: yaml}]);
  expect(problems).toEqual([]);
  const c = loaded.config;
  const entry = [...(c.onboot ?? []), ...(c.onshutdown ?? []), ...(c.services ?? [])].find((e) => e.name === name)!;
  return bundleConfig(entry, image, {idMap: containerIdMap(c), volumes: c.volumes ?? []});
}
const one = (fields: string, image?: ContainerConfig) => bundle(`onboot:\n  - name: a\n    image: alpine\n${fields.replace(/^/gm, '    ')}\n`, 'a', image);
const label = (obj: object, rest: ContainerConfig = {}): ContainerConfig => ({...rest, Labels: {[LABEL]: JSON.stringify(obj)}});

describe('bundleConfig: process', () => {
  it('command is entrypoint+cmd of the image, unless the label or the entry says otherwise', () => {
    expect(one('', {Entrypoint: ['/init'], Cmd: ['-v']}).spec.process.args).toEqual(['/init', '-v']);
    expect(one('', label({command: ['/label']}, {Entrypoint: ['/init']})).spec.process.args).toEqual(['/label']);
    expect(one('command: [/mine]', label({command: ['/label']})).spec.process.args).toEqual(['/mine']);
  });

  it('env from the image unless given; cwd defaults to / (empty is not allowed in OCI)', () => {
    const b = one('', {Env: ['PATH=/bin'], WorkingDir: ''});
    expect(b.spec.process.env).toEqual(['PATH=/bin']);
    expect(b.spec.process.cwd).toBe('/');
    expect(one('env: [A=1]\ncwd: /x', {Env: ['PATH=/bin'], WorkingDir: '/img'}).spec.process).toMatchObject({env: ['A=1'], cwd: '/x'});
    expect(one('', {WorkingDir: '/img'}).spec.process.cwd).toBe('/img');
  });

  it('capabilities: list, add to the label, all, none, ambient', () => {
    expect(one('capabilities: [CAP_SYS_ADMIN, CAP_CHOWN]').spec.process.capabilities).toEqual({
      bounding: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      effective: ['CAP_SYS_ADMIN', 'CAP_CHOWN'],
      inheritable: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      permitted: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      ambient: [],
    });
    expect(one('capabilities: [all]').spec.process.capabilities.effective).toEqual(ALL_CAPABILITIES);
    expect(one('capabilities: [ALL]').spec.process.capabilities.effective).toHaveLength(41);
    expect(one('capabilities: [none]', label({capabilities: ['CAP_KILL']})).spec.process.capabilities.bounding).toEqual([]);
    expect(one('capabilities: [CAP_KILL]\nambient: [CAP_NET_RAW]').spec.process.capabilities).toMatchObject({
      bounding: ['CAP_KILL', 'CAP_NET_RAW'],
      effective: ['CAP_KILL'],
      ambient: ['CAP_NET_RAW'],
    });
    // capabilities replaces the label's; capabilities.add extends it
    expect(one('capabilities: [CAP_KILL]\ncapabilities.add: [CAP_BPF]', label({capabilities: ['CAP_SYS_ADMIN']})).spec.process.capabilities.effective).toEqual(['CAP_KILL']);
    expect(one('capabilities.add: [CAP_BPF]', label({capabilities: ['CAP_SYS_ADMIN']})).spec.process.capabilities.effective).toEqual(['CAP_SYS_ADMIN', 'CAP_BPF']);
  });

  it('LINUXKIT BUG FIXED: capabilities.add merged with the label keeps each capability once (LinuxKit repeats them in effective)', () => {
    const b = one('capabilities.add: [CAP_SYS_ADMIN, CAP_CHOWN]', label({capabilities: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']}));
    // LinuxKit v1.8.2 writes effective: [CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_ADMIN, CAP_CHOWN]
    expect(b.spec.process.capabilities.effective).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_CHOWN']);
    expect(b.spec.process.capabilities.bounding).toEqual(['CAP_CHOWN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
    expect(mergeUnique(['a', 'b', 'a'], ['b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(mergeUnique(undefined, undefined)).toEqual([]);
  });

  it('rlimits keep 64-bit values exactly in the JSON', () => {
    const b = one('rlimits: ["nofile, 1024, unlimited", "RLIMIT_CORE,0,18446744073709551614"]');
    expect(b.spec.process.rlimits).toEqual([
      {type: 'RLIMIT_NOFILE', soft: 1024n, hard: 18446744073709551615n},
      {type: 'RLIMIT_CORE', soft: 0n, hard: 18446744073709551614n},
    ]);
    const json = formatSpecJson(b.spec);
    expect(json).toContain(
      '"rlimits": [\n            {\n                "type": "RLIMIT_NOFILE",\n                "hard": 18446744073709551615,\n                "soft": 1024\n            },',
    );
  });

  it('uid, gid and additionalGids by number, root, or container name (ids from 100 in onboot, onshutdown, services order)', () => {
    const yaml = [
      'onboot:',
      '  - {name: a, image: alpine, uid: s, gid: root, additionalGids: [b, 7, a]}',
      '  - {name: b, image: alpine}',
      'onshutdown:',
      '  - {name: d, image: alpine, uid: 1000, gid: d}',
      'services:',
      '  - {name: s, image: alpine}',
    ].join('\n');
    expect(bundle(yaml, 'a').spec.process.user).toEqual({uid: 103, gid: 0, additionalGids: [101, 7, 100]});
    expect(bundle(yaml, 'd').spec.process.user).toEqual({uid: 1000, gid: 102, additionalGids: []});
    expect(bundle(yaml, 's', label({uid: 'b'})).spec.process.user.uid).toBe(101);
  });

  it('noNewPrivileges and oomScoreAdj (0 is written, absent is not)', () => {
    expect(formatSpecJson(one('noNewPrivileges: true\noomScoreAdj: 0').spec)).toContain('"noNewPrivileges": true,\n        "oomScoreAdj": 0\n    },');
    expect(formatSpecJson(one('').spec)).not.toMatch(/oomScoreAdj|noNewPrivileges/);
    expect(one('', label({oomScoreAdj: -500})).spec.process.oomScoreAdj).toBe(-500);
  });
});

describe('bundleConfig: mounts', () => {
  const dests = (b: BundleConfig) => b.spec.mounts.map((m) => `${m.destination} ${m.type} ${m.source} ${(m.options ?? []).join(',')}`);

  it('defaults, sorted by destination', () => {
    expect(dests(one(''))).toEqual([
      '/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k',
      '/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620',
      '/proc proc proc nosuid,nodev,noexec,relatime',
      '/sys sysfs sysfs nosuid,noexec,nodev',
      '/sys/fs/cgroup cgroup cgroup nosuid,noexec,nodev,relatime,ro',
    ]);
  });

  it('readonly adds ro to /dev and /sys and marks the root', () => {
    const b = one('readonly: true');
    expect(b.readonly).toBe(true);
    expect(b.spec.root).toEqual({path: 'rootfs', readonly: true});
    expect(dests(b).filter((d) => d.startsWith('/dev ') || d.startsWith('/sys '))).toEqual([
      '/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k,ro',
      '/sys sysfs sysfs nosuid,noexec,nodev,ro',
    ]);
    expect(one('readonly: false', label({readonly: true})).readonly).toBe(false);
  });

  it('binds: rw,rbind,rshared by default, given options plus rbind; binds.add extends the label, binds replaces it', () => {
    const b = one('binds.add: ["/var:/var:ro", "/run:/run"]', label({binds: ['/tmp:/tmp', '/run:/run']}));
    expect(dests(b).filter((d) => d.includes(' bind '))).toEqual(['/run bind /run rw,rbind,rshared', '/tmp bind /tmp rw,rbind,rshared', '/var bind /var ro,rbind']);
    expect(dests(one('binds: ["/x:/x"]', label({binds: ['/tmp:/tmp']}))).filter((d) => d.includes(' bind '))).toEqual(['/x bind /x rw,rbind,rshared']);
    // a bind onto a default mount point replaces it
    expect(dests(one('binds: ["/dev:/dev"]'))[0]).toBe('/dev bind /dev rw,rbind,rshared');
  });

  it('tmpfs with and without options', () => {
    expect(dests(one('tmpfs: [/tmp, "/run:size=1m,mode=1777"]')).filter((d) => d.startsWith('/tmp') || d.startsWith('/run'))).toEqual([
      '/run tmpfs tmpfs size=1m,mode=1777',
      '/tmp tmpfs tmpfs ',
    ]);
  });

  it('mounts: type from source, /dev defaults to tmpfs, destination from type, source from type', () => {
    const b = one('mounts:\n  - {type: cgroup, options: [rw]}\n  - {source: mqueue}\n  - {destination: /dev, options: [size=1m]}\n  - {type: proc, destination: /hostproc}');
    expect(dests(b)).toEqual([
      '/dev tmpfs tmpfs size=1m',
      '/dev/mqueue mqueue mqueue ',
      '/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620',
      '/hostproc proc proc ',
      '/proc proc proc nosuid,nodev,noexec,relatime',
      '/sys sysfs sysfs nosuid,noexec,nodev',
      '/sys/fs/cgroup cgroup cgroup rw',
    ]);
  });

  it('volumes: names become /containers/volumes/NAME/merged', () => {
    const yaml = [
      'onboot:',
      '  - name: a',
      '    image: alpine',
      '    binds: ["data:/data", "conf:/conf:ro"]',
      '    mounts: [{type: bind, source: data, destination: /m, options: [rbind]}]',
      'volumes:',
      '  - {name: data}',
      '  - {name: conf, readonly: true}',
    ].join('\n');
    const b = bundle(yaml, 'a');
    expect(dests(b).filter((d) => d.includes(' bind '))).toEqual([
      '/conf bind /containers/volumes/conf/merged ro,rbind',
      '/data bind /containers/volumes/data/merged rw,rbind,rshared',
      // LINUXKIT BUG FIXED: LinuxKit leaves "data" here (volume.go rewrites a copy of the mount)
      '/m bind /containers/volumes/data/merged rbind',
    ]);
  });
});

describe('bundleConfig: linux', () => {
  it('namespaces: net/ipc/uts/user default to the host, pid to new, mount always new', () => {
    const ns = (f: string, image?: ContainerConfig) => one(f, image).spec.linux.namespaces;
    expect(ns('')).toEqual([{type: 'pid'}, {type: 'mount'}]);
    expect(ns('pid: host')).toEqual([{type: 'mount'}]);
    expect(ns('net: new\nipc: new\nuts: new\nuserns: new\npid: new')).toEqual([
      {type: 'network'},
      {type: 'ipc'},
      {type: 'uts'},
      {type: 'pid'},
      {type: 'user'},
      {type: 'mount'},
    ]);
    expect(ns('net: none\npid: root')).toEqual([{type: 'network'}, {type: 'mount'}]);
    expect(ns('net: /run/netns/x\nipc: /proc/1/ns/ipc\npid: /proc/1/ns/pid')).toEqual([
      {type: 'network', path: '/run/netns/x'},
      {type: 'ipc', path: '/proc/1/ns/ipc'},
      {type: 'pid', path: '/proc/1/ns/pid'},
      {type: 'mount'},
    ]);
    expect(ns('', label({net: 'new', pid: 'host'}))).toEqual([{type: 'network'}, {type: 'mount'}]);
    expect(ns('net: host', label({net: 'new'}))).toEqual([{type: 'pid'}, {type: 'mount'}]);
  });

  it('devices and resources', () => {
    const b = one(
      'devices:\n  - {path: /dev/console, type: c, major: 5, minor: 1, mode: "0666"}\n  - {path: all, type: b}\nresources:\n  memory: {limit: 9223372036854775807}\n  devices: [{allow: false, access: rwm}]',
    );
    expect(b.spec.linux.devices).toEqual([{path: '/dev/console', type: 'c', major: 5, minor: 1, fileMode: 0o666}]);
    expect(b.spec.linux.resources).toEqual({
      memory: {limit: 9223372036854775807n},
      devices: [
        {allow: false, access: 'rwm'},
        {allow: true, type: 'c', major: 5, minor: 1, access: 'rwm'},
        {allow: true, type: 'b', access: 'rwm'},
      ],
    });
    expect(formatSpecJson(b.spec)).toContain('"memory": {\n                "limit": 9223372036854775807\n            }');
    expect(formatSpecJson(b.spec)).toContain('"fileMode": 438');
  });

  it('sysctl, annotations, hostname, maskedPaths, readonlyPaths, rootfsPropagation, cgroupsPath, id mappings', () => {
    const b = one(
      [
        'sysctl: {vm.swappiness: "10", net.core.somaxconn: "1024"}',
        'annotations: {b: "2", a: "<1>"}',
        'hostname: box',
        'maskedPaths: [/proc/kcore]',
        'readonlyPaths: [/proc/sys]',
        'rootfsPropagation: shared',
        'cgroupsPath: /x/y',
        'userns: new',
        'uidMappings: [{size: 65536}]',
      ].join('\n'),
    );
    const json = formatSpecJson(b.spec);
    expect(json).toContain('"hostname": "box",');
    expect(json).toContain('"annotations": {\n        "a": "\\u003c1\\u003e",\n        "b": "2"\n    },');
    expect(json).toContain('"uidMappings": [\n            {\n                "containerID": 0,\n                "hostID": 0,\n                "size": 65536\n            }\n        ],');
    expect(json).toContain('"sysctl": {\n            "net.core.somaxconn": "1024",\n            "vm.swappiness": "10"\n        },');
    expect(json).toContain('"cgroupsPath": "/x/y",');
    expect(json).toContain('"rootfsPropagation": "shared",\n        "maskedPaths": [\n            "/proc/kcore"\n        ],\n        "readonlyPaths": [\n            "/proc/sys"\n        ]\n    }\n}');
  });
});

describe('config.json and runtime.json bytes', () => {
  it('a plain entry, whole', () => {
    const b = one('', {Entrypoint: ['/bin/sh'], Env: ['A=<&>']});
    expect(formatSpecJson(b.spec)).toBe(`{
    "ociVersion": "1.2.1",
    "process": {
        "user": {
            "uid": 0,
            "gid": 0
        },
        "args": [
            "/bin/sh"
        ],
        "env": [
            "A=\\u003c\\u0026\\u003e"
        ],
        "cwd": "/",
        "capabilities": {}
    },
    "root": {
        "path": "rootfs"
    },
    "mounts": [
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": [
                "nosuid",
                "strictatime",
                "mode=755",
                "size=65536k"
            ]
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]
        },
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": [
                "nosuid",
                "nodev",
                "noexec",
                "relatime"
            ]
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": [
                "nosuid",
                "noexec",
                "nodev"
            ]
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": [
                "nosuid",
                "noexec",
                "nodev",
                "relatime",
                "ro"
            ]
        }
    ],
    "linux": {
        "resources": {},
        "namespaces": [
            {
                "type": "pid"
            },
            {
                "type": "mount"
            }
        ]
    }
}`);
    expect(formatRuntimeJson(b.runtime)).toBe(`{
    "cgroups": [],
    "mounts": [],
    "mkdir": [],
    "interfaces": [],
    "bindNS": {
        "cgroup": "",
        "ipc": "",
        "mnt": "",
        "net": "",
        "pid": "",
        "user": "",
        "uts": ""
    },
    "namespace": ""
}`);
  });

  it('runtime fields come one by one from the entry, else the label', () => {
    const b = one(
      'runtime:\n  mkdir: [/var/x]\n  interfaces: [{name: eth1, add: veth, peer: eth1-p, createInRoot: true}]\n  bindNS: {net: /run/netns/a}',
      label({runtime: {mkdir: ['/label'], cgroups: ['c'], namespace: 'ns', bindNS: {ipc: '/run/ipc', net: '/label'}}}),
    );
    expect(b.runtime).toEqual({
      cgroups: ['c'],
      mounts: [],
      mkdir: ['/var/x'],
      interfaces: [{name: 'eth1', add: 'veth', peer: 'eth1-p', createInRoot: true}],
      bindNS: {cgroup: '', ipc: '/run/ipc', mnt: '', net: '/run/netns/a', pid: '', user: '', uts: ''},
      namespace: 'ns',
    });
    expect(formatRuntimeJson(b.runtime)).toContain('"interfaces": [\n        {\n            "name": "eth1",\n            "add": "veth",\n            "peer": "eth1-p",\n            "createInRoot": true\n        }\n    ],');
  });

  it('the rootfs mounts the build prepends', () => {
    const b = one('');
    const rt = {...b.runtime, mounts: [...rootfsMounts('containers/onboot/000-a', false), ...(b.runtime.mounts ?? [])]};
    expect(formatRuntimeJson(rt)).toContain(`"mounts": [
        {
            "destination": "/containers/onboot/000-a/tmp",
            "type": "tmpfs",
            "source": "tmpfs"
        },
        {
            "destination": "/containers/onboot/000-a/tmp",
            "options": [
                "remount",
                "private"
            ]
        },
        {
            "destination": "/containers/onboot/000-a/rootfs",
            "type": "overlay",
            "source": "overlay",
            "options": [
                "lowerdir=/containers/onboot/000-a/lower",
                "upperdir=/containers/onboot/000-a/tmp/upper",
                "workdir=/containers/onboot/000-a/tmp/work"
            ]
        }
    ],`);
    expect(rootfsMounts('containers/services/s', true)).toEqual([{source: '/containers/services/s/rootfs', destination: '/containers/services/s/rootfs', options: ['bind']}]);
    expect(rootfsMounts('containers/services/t', true, 'containers/services/s/rootfs')[0]!.source).toBe('/containers/services/s/rootfs');
  });
});

describe('errors name the container and the field', () => {
  it('from the label', () => {
    expect(() => one('', label({capabilities: ['CAP_KILL', 'CAP_NOPE']}))).toThrow(
      "container \"a\" (alpine): capabilities[1]: unknown capability: CAP_NOPE (from the image's org.mobyproject.config label)",
    );
    expect(() => one('', label({binds: ['/x']}))).toThrow(`container "a" (alpine): binds[0]: cannot parse bind, missing ':': /x (from the image's org.mobyproject.config label)`);
    expect(() => one('', label({uid: 'nobody'}))).toThrow('container "a" (alpine): uid: cannot find uid "nobody"');
    expect(() => one('', label({name: 'x'}))).toThrow('container "a" (alpine): invalid org.mobyproject.config label:\n  - name cannot be set in metadata label');
    expect(() => one('', label({command: 'not a list'}))).toThrow('command: expected a list, got a string ("not a list")');
    expect(() => one('', {Labels: {[LABEL]: '[1]'}})).toThrow('the label must hold an object');
    expect(() => one('', label({rlimits: ['nofile,1']}))).toThrow(
      "rlimits[0]: cannot parse rlimit \"nofile,1\": expected NAME,SOFT,HARD (from the image's org.mobyproject.config label)",
    );
  });

  it('carry the field path, so the build can point at file:line:col', () => {
    const yaml = 'onboot:\n  - name: a\n    image: alpine\n    binds.add: ["/ok:/ok", "/bad"]\n';
    const {loaded} = checkSources([{name: 'c.yml', text: yaml}]);
    const err = (() => {
      try {
        bundleConfig(loaded.config.onboot![0]!, label({binds: ['/l:/l']}), {idMap: new Map(), volumes: []});
      } catch (e) {
        return e;
      }
    })() as BundleConfigError;
    expect(err).toBeInstanceOf(BundleConfigError);
    expect(err.field).toEqual(['binds.add', 1]);
    expect(err.fromLabel).toBe(false);
    expect(loaded.positionOf(['onboot', 0, ...err.field])).toEqual({file: 'c.yml', line: 4, col: 28});
    const capErr = (() => {
      try {
        bundleConfig({name: 'a', image: 'alpine', 'capabilities.add': ['CAP_KILL', 'CAP_X']}, undefined, {idMap: new Map(), volumes: []});
      } catch (e) {
        return e;
      }
    })() as BundleConfigError;
    expect([capErr.field, capErr.fromLabel]).toEqual([['capabilities.add', 1], false]);
  });

  it('a label may carry fields LinuxKit drops, which are dropped as LinuxKit does', () => {
    const b = one('', label({uidMappings: [{hostID: 1000, containerID: 0, size: 1}], resources: {memory: {kernelTCP: 1, limit: 5}}}));
    expect(b.spec.linux.uidMappings).toEqual([{size: 1}]);
    expect(b.spec.linux.resources).toEqual({memory: {limit: 5}});
  });

  it('volumes that do not exist or are read-only', () => {
    const {loaded} = checkSources([{name: 'x', text: 'onboot:\n  - {name: a, image: alpine, binds: ["v:/v"]}\n'}]);
    const entry = loaded.config.onboot![0]!;
    expect(() => bundleConfig(entry, undefined, {idMap: new Map(), volumes: []})).toThrow('container "a" (alpine): binds[0]: volume "v" not found');
    expect(() => bundleConfig(entry, undefined, {idMap: new Map(), volumes: [{name: 'v', readonly: true}]})).toThrow(
      'container "a" (alpine): binds[0]: volume v is read-only, but attempting to write into container read-write',
    );
  });
});
