// Validation: every problem found, each at the node it is about (file:line:col).
import {describe, expect, it} from 'vitest';
import {checkSources} from '../../../src/config/load.ts';
import {formatProblem} from '../../../src/config/problems.ts';

function problems(...texts: string[]): string[] {
  return checkSources(texts.map((text, i) => ({name: `f${i}.yml`, text}))).problems.map(formatProblem);
}

const y = (...lines: string[]) => lines.join('\n') + '\n';

describe('YAML syntax and structure', () => {
  it('reports a syntax error at its position, only the first', () => {
    expect(problems(y('onboot:', '  - name: a', '   image: b', '  - x: [1'))).toEqual([
      'f0.yml:3:1: YAML syntax error: Sequence item without - indicator',
    ]);
  });

  it('reports duplicate keys, also inside entries', () => {
    expect(problems(y('init: []', 'onboot:', '  - name: a', '    image: alpine', '    name: b', 'init: []'))).toEqual([
      'f0.yml:5:5: duplicate key "name" (first defined at line 3)',
      'f0.yml:6:1: duplicate key "init" (first defined at line 1)',
    ]);
  });

  it('rejects an empty file as LinuxKit does (EOF), accepts a null document', () => {
    expect(problems('# nothing here\n')).toEqual(['f0.yml:1:1: the configuration is empty']);
    expect(problems('')).toEqual(['f0.yml:1:1: the configuration is empty']);
    expect(problems('~\n')).toEqual([]);
  });

  it('rejects a top-level list and a second document', () => {
    expect(problems('- a\n')).toEqual([
      'f0.yml:1:1: the configuration must be a mapping of sections (kernel, init, onboot, onshutdown, services, files, volumes, trust)',
    ]);
    expect(problems(y('init: []', '---', 'onboot: []'))).toEqual([
      'f0.yml:2:1: only one YAML document is allowed per file (LinuxKit reads the first and ignores the rest)',
    ]);
  });

  it('resolves scalars as yaml.v3: yes/on are strings, 0755 an int, quoted numbers strings', () => {
    expect(
      problems(
        y('onboot:', '  - name: a', '    image: alpine', '    readonly: yes', '    cwd: 0755', '    net: on', '    oomScoreAdj: "5"', '    hostname: 1_0'),
      ),
    ).toEqual([
      'f0.yml:4:15: onboot[0].readonly: expected a boolean (true or false), got a string ("yes")',
      'f0.yml:5:10: onboot[0].cwd: expected a string, got an integer (0755)',
      'f0.yml:6:10: net: "on" is neither "host", "root", "new", "none" nor the absolute path of a namespace file',
      'f0.yml:7:18: onboot[0].oomScoreAdj: expected an integer, got a string ("5")',
      'f0.yml:8:15: onboot[0].hostname: expected a string, got an integer (1_0)',
    ]);
  });

  it('honours explicit tags and reports ones that do not fit', () => {
    expect(problems(y('onboot:', '  - name: !!str 123', '    image: alpine', '    oomScoreAdj: !!int "7"', '    cwd: !!int abc'))).toEqual([
      'f0.yml:5:16: cannot decode !!str `abc` as a !!int',
    ]);
  });

  it('follows anchors, aliases and merge keys', () => {
    const text = y(
      'onboot:',
      '  - &base',
      '    name: a',
      '    image: alpine',
      '    readonly: true',
      '  - <<: *base',
      '    name: b',
      'services:',
      '  - *base',
    );
    const {loaded, problems} = checkSources([{name: 'a.yml', text}]);
    expect(problems).toEqual([]);
    expect(loaded.config.onboot).toEqual([
      {name: 'a', image: 'alpine', readonly: true},
      {name: 'b', image: 'alpine', readonly: true},
    ]);
    expect(loaded.config.services).toEqual([{name: 'a', image: 'alpine', readonly: true}]);
  });

  it('an absent value is null, reported at its key', () => {
    expect(problems(y('kernel:', 'onboot:', '  - name:', '    image: alpine'))).toEqual([
      'f0.yml:1:1: kernel: expected a mapping, got nothing',
      'f0.yml:3:5: onboot[0].name: expected a string, got nothing',
    ]);
  });
});

describe('schema', () => {
  it('reports every unknown field with a suggestion, and missing required fields', () => {
    expect(
      problems(
        y('kernal:', '  image: x', 'services:', '  - name: a', '    image: b', '    comand: [x]', '    Binds: []', '  - image: c', 'files:', '  - path: a', '    content: x'),
      ),
    ).toEqual([
      'f0.yml:1:1: unknown field "kernal" at the top level (did you mean "kernel"?)',
      'f0.yml:6:5: unknown field "comand" in services[0] (did you mean "command"?)',
      'f0.yml:7:5: unknown field "Binds" in services[0] (did you mean "binds"?)',
      'f0.yml:8:5: services[1]: missing required field "name"',
      'f0.yml:10:5: file "a" needs one of contents, source, metadata, directory: true or symlink',
      'f0.yml:11:5: unknown field "content" in files[0] (did you mean "contents"?)',
    ]);
  });

  it('checks types of lists, maps, ids and enums', () => {
    expect(
      problems(
        y(
          'init: linuxkit/init:abc',
          'onboot:',
          '  - name: a',
          '    image: alpine',
          '    command: [sh, 1]',
          '    sysctl: {net.ipv4.ip_forward: 1}',
          '    uid: [1]',
          '    additionalGids: [1, x, 1.5]',
          'volumes:',
          '  - name: v',
          '    format: tar',
        ),
      ),
    ).toEqual([
      'f0.yml:1:7: init: expected a list, got a string ("linuxkit/init:abc")',
      'f0.yml:5:19: onboot[0].command[1]: expected a string, got an integer (1)',
      'f0.yml:6:35: onboot[0].sysctl.net.ipv4.ip_forward: expected a string, got an integer (1)',
      'f0.yml:7:10: onboot[0].uid: expected a name or a number, got a list',
      'f0.yml:8:28: onboot[0].additionalGids[2]: expected a name or a number, got a number (1.5)',
      'f0.yml:11:13: volumes[0].format: must be one of "oci", "filesystem", got "tar"',
    ]);
  });

  it('checks integers against the Go type they decode into', () => {
    expect(
      problems(
        y(
          'onboot:',
          '  - name: a',
          '    image: alpine',
          '    oomScoreAdj: 9223372036854775808',
          '    resources:',
          '      blockio: {weight: 65536}',
          '      cpu: {shares: -1, quota: -1}',
          '      memory: {limit: 9223372036854775807}',
          '    devices: [{path: /dev/x, major: 1.0, minor: 2, mode: "0600"}]',
        ),
      ),
    ).toEqual([
      "f0.yml:4:18: onboot[0].oomScoreAdj: 9223372036854775808 does not fit the field's type (int: -9223372036854775808 to 9223372036854775807)",
      "f0.yml:6:25: onboot[0].resources.blockio.weight: 65536 does not fit the field's type (uint16: 0 to 65535)",
      "f0.yml:7:21: onboot[0].resources.cpu.shares: -1 does not fit the field's type (uint64: 0 to 18446744073709551615)",
    ]);
  });

  it('rejects fields LinuxKit accepts but silently drops', () => {
    expect(
      problems(
        y(
          'onboot:',
          '  - name: a',
          '    image: alpine',
          '    uidMappings: [{hostID: 100000, containerID: 0, size: 65536}]',
          '    resources:',
          '      memory: {kernelTCP: 1}',
          '      hugepageLimits: []',
        ),
      ),
    ).toEqual([
      'f0.yml:4:20: field "hostID" in onboot[0].uidMappings[0] has no effect in LinuxKit: its schema allows it, but its decoder only reads "hostid" (which the schema forbids), so the value is silently dropped; tskit rejects it instead',
      'f0.yml:4:36: field "containerID" in onboot[0].uidMappings[0] has no effect in LinuxKit: its schema allows it, but its decoder only reads "containerid" (which the schema forbids), so the value is silently dropped; tskit rejects it instead',
      'f0.yml:6:16: field "kernelTCP" in onboot[0].resources.memory has no effect in LinuxKit: its schema allows it, but its decoder only reads "kerneltcp" (which the schema forbids), so the value is silently dropped; tskit rejects it instead',
      'f0.yml:7:7: field "hugepageLimits" in onboot[0].resources has no effect in LinuxKit: its schema allows it, but its decoder only reads "hugepagelimits" (which the schema forbids), so the value is silently dropped; tskit rejects it instead',
    ]);
  });

  it('accepts trust', () => {
    expect(problems(y('trust:', '  org: [linuxkit]', '  image: [alpine]'))).toEqual([]);
  });
});


describe('semantic checks', () => {
  const entry = (...lines: string[]) => y('onboot:', '  - name: a', '    image: alpine', ...lines.map((l) => '    ' + l));

  it('capabilities: names exactly as LinuxKit knows them; all/none only alone', () => {
    expect(problems(entry('capabilities: [CAP_SYS_ADMIN, sys_admin, NET_RAW, all, CAP_FOO]', 'ambient: [none]', 'capabilities.add: [ALL]'))).toEqual([
      'f0.yml:4:35: unknown capability "sys_admin" (did you mean "CAP_SYS_ADMIN"?)',
      'f0.yml:4:46: unknown capability "NET_RAW" (did you mean "CAP_NET_RAW"?)',
      'f0.yml:4:55: unknown capability "all" ("all" is only a keyword as the list\'s single item)',
      'f0.yml:4:60: unknown capability "CAP_FOO"',
    ]);
  });

  it('rlimits: syntax, names, numbers and soft <= hard', () => {
    expect(
      problems(entry('rlimits:', '  - nofile,1024,1024', '  - RLIMIT_CORE, unlimited, unlimited', '  - nofile,1', '  - nofiles,1,2', '  - nproc,-1,2', '  - stack,10,5')),
    ).toEqual([
      'f0.yml:7:9: cannot parse rlimit "nofile,1": expected NAME,SOFT,HARD',
      'f0.yml:8:9: unknown rlimit "nofiles" (known: cpu, fsize, data, stack, core, rss, nproc, nofile, memlock, as, locks, sigpending, msgqueue, nice, rtprio, rttime)',
      'f0.yml:9:9: cannot parse "-1" in rlimit "nproc,-1,2" as a number or "unlimited"',
      'f0.yml:10:9: rlimit "stack,10,5": the soft limit is above the hard limit, which the kernel refuses',
    ]);
  });

  it('binds, tmpfs and mounts syntax', () => {
    expect(
      problems(
        entry(
          'binds: [/a:/a, /b, "/c:/c:ro:x", "/d:/d:rshared,ro"]',
          'tmpfs: [/t, "/u:size=1m", "/v:a:b"]',
          'mounts:',
          '  - {type: proc}',
          '  - {source: sysfs}',
          '  - {destination: /dev}',
          '  - {destination: /x}',
          '  - {type: tmpfs}',
        ),
      ),
    ).toEqual([
      "f0.yml:4:20: cannot parse bind \"/b\": missing ':' (expected SOURCE:DESTINATION[:OPTION,...])",
      "f0.yml:4:24: cannot parse bind \"/c:/c:ro:x\": too many ':' (expected SOURCE:DESTINATION[:OPTION,...])",
      "f0.yml:5:31: cannot parse tmpfs \"/v:a:b\": too many ':' (expected PATH[:OPTION,...])",
      'f0.yml:10:9: mount for destination /x is missing type',
      'f0.yml:11:9: mount type tmpfs is missing destination',
    ]);
  });

  it('devices need an octal mode unless path is all; file modes are octal', () => {
    expect(
      problems(
        entry(
          'devices:',
          '  - {path: all, type: c}',
          '  - {path: /dev/a, type: c, major: 1, minor: 1, mode: "0666"}',
          '  - {path: /dev/b, type: c}',
          '  - {path: /dev/c, mode: "0o666"}',
        ),
      ),
    ).toEqual(['f0.yml:7:9: device /dev/b needs a mode (octal, e.g. "0666")', 'f0.yml:8:30: cannot parse device mode "0o666" as an octal number']);
    expect(problems(y('files:', '  - {path: a, contents: x, mode: "0644"}', '  - {path: b, contents: x, mode: "rw-r--r--"}', '  - {path: c, contents: x, mode: "0800"}'))).toEqual([
      'f0.yml:3:34: cannot parse file mode "rw-r--r--" as an octal number',
      'f0.yml:4:34: cannot parse file mode "0800" as an octal number',
    ]);
  });

  it('uid and gid: numbers, root, or container names', () => {
    expect(
      problems(
        y(
          'onboot:',
          '  - {name: a, image: alpine, uid: b, gid: root, additionalGids: [a, 0, svc, nobody, "1000"]}',
          '  - {name: b, image: alpine, uid: 4294967296}',
          'services:',
          '  - {name: svc, image: alpine, uid: ""}',
          'files:',
          '  - {path: x, contents: y, uid: svc, gid: wheel}',
        ),
      ),
    ).toEqual([
      'f0.yml:2:77: additional gid "nobody" is not a number, "root", or the name of an onboot, onshutdown or service container',
      'f0.yml:2:85: additional gid "1000" is not a number, "root", or the name of an onboot, onshutdown or service container (write the number without quotes)',
      'f0.yml:3:35: uid 4294967296 is out of range (0 to 4294967295)',
      'f0.yml:7:43: gid "wheel" is not a number, "root", or the name of an onboot, onshutdown or service container',
    ]);
  });

  it('namespace values', () => {
    expect(problems(entry('net: hots', 'pid: none', 'ipc: /proc/1/ns/ipc', 'uts: new', 'userns: host'))).toEqual([
      'f0.yml:4:10: net: "hots" is neither "host", "root", "new", "none" nor the absolute path of a namespace file',
      'f0.yml:5:10: pid: "none" is neither "host", "root", "new" nor the absolute path of a namespace file',
    ]);
  });

  it('files: exactly one kind, metadata yaml or json, a path', () => {
    expect(
      problems(
        y(
          'files:',
          '  - {path: a, contents: "", source: b}',
          '  - {path: b, directory: true, symlink: /x}',
          '  - {path: c, metadata: toml}',
          '  - {path: d}',
          '  - {contents: x}',
          '  - {path: e, directory: false, symlink: /y, optional: true}',
          '  - {path: f, source: ~/x, optional: true}',
        ),
      ),
    ).toEqual([
      'f0.yml:2:37: file "a" sets contents and source: use exactly one of contents, source, metadata, directory or symlink',
      'f0.yml:3:41: file "b" sets directory and symlink: use exactly one of contents, source, metadata, directory or symlink',
      'f0.yml:4:25: unsupported metadata type "toml" (use "yaml" or "json")',
      'f0.yml:5:5: file "d" needs one of contents, source, metadata, directory: true or symlink',
      'f0.yml:6:5: file needs a path',
    ]);
  });

  it('image references', () => {
    expect(
      problems(
        y(
          'kernel: {image: "linuxkit/kernel:6.6"}',
          'init: [Linuxkit/init, "docker://alpine", "alpine:", "alpine@sha256:abc", localhost:5000/a/b:c, "@pkg:./pkg/init"]',
          'onboot:',
          '  - {name: a, image: "alpine:3.20@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}',
          '  - {name: b, image: "ALPINE"}',
          'volumes:',
          '  - {name: v, image: "a b"}',
        ),
      ),
    ).toEqual([
      'f0.yml:2:8: invalid image reference "Linuxkit/init": repository name must be lowercase',
      'f0.yml:2:23: invalid image reference "docker://alpine": an image reference has no URL scheme (remove "...://")',
      'f0.yml:2:42: invalid image reference "alpine:": invalid tag ""',
      'f0.yml:2:53: invalid image reference "alpine@sha256:abc": invalid digest "sha256:abc"',
      'f0.yml:2:96: invalid image reference "@pkg:./pkg/init": LinuxKit package templates (@pkg:...) are not supported by tskit',
      'f0.yml:5:22: invalid image reference "ALPINE": repository name must be lowercase',
      'f0.yml:7:22: invalid image reference "a b": an image reference cannot contain whitespace',
    ]);
  });

  it('services must have unique names; onboot may repeat', () => {
    expect(problems(y('onboot:', '  - {name: a, image: x}', '  - {name: a, image: x}', 'services:', '  - {name: s, image: x}', '  - {name: s, image: y}'))).toEqual([
      'f0.yml:6:12: duplicate service name "s" (first at f0.yml:5:12)',
    ]);
  });

  it('volumes: name syntax, unique names, binds and mounts must name declared volumes, read-only ones ro', () => {
    expect(
      problems(
        y(
          'onboot:',
          '  - name: a',
          '    image: alpine',
          '    binds: [data:/data, ro:/ro, "ro:/ro2:ro", "ro:/ro3:ro,rshared", nope:/x]',
          '    binds.add: [ro:/ro4]',
          '    mounts:',
          '      - {type: bind, source: data, destination: /m}',
          '      - {type: bind, source: ro, destination: /m2, options: [rw, ro]}',
          '      - {type: bind, source: ro, destination: /m3, options: [rbind, ro, rw]}',
          '      - {type: bind, source: gone, destination: /m4}',
          '      - {type: tmpfs, source: notavolume, destination: /m5}',
          'volumes:',
          '  - {name: data}',
          '  - {name: ro, readonly: true}',
          '  - {name: Data}',
          '  - {name: data, platforms: [linux/amd64/v3/x]}',
        ),
      ),
    ).toEqual([
      'f0.yml:4:25: volume "ro" is read-only, but this bind would mount it read-write (end the bind with ":ro")',
      'f0.yml:4:47: volume "ro" is read-only, but this bind would mount it read-write (end the bind with ":ro")',
      'f0.yml:4:69: volume "nope" is not declared in volumes (a bind source not starting with "/" names a volume)',
      'f0.yml:5:17: volume "ro" is read-only, but this bind would mount it read-write (end the bind with ":ro")',
      'f0.yml:8:9: volume "ro" is read-only, but this mount would be read-write (add the "ro" option)',
      'f0.yml:10:30: volume "gone" is not declared in volumes (a bind mount source not starting with "/" names a volume)',
      'f0.yml:15:12: invalid volume name "Data": only lowercase letters, digits, "_" and "-" are allowed',
      'f0.yml:16:12: duplicate volume name "data" (first declared at f0.yml:13:12)',
      'f0.yml:16:30: too many slashes in platform "linux/amd64/v3/x" (expected os/arch[/variant])',
    ]);
  });
});

describe('several files', () => {
  const a = y('kernel:', '  image: linuxkit/kernel:6.6', 'volumes:', '  - name: shared', 'onboot:', '  - {name: one, image: alpine}');
  const b = y('onboot:', '  - {name: two, image: alpine, binds: [shared:/s], uid: three}', 'services:', '  - {name: three, image: alpine}');

  it('merge as LinuxKit does, but keep the earlier files\' volumes (LinuxKit loses them)', () => {
    const {loaded, problems} = checkSources([
      {name: 'a.yml', text: a},
      {name: 'b.yml', text: b},
    ]);
    expect(problems).toEqual([]);
    expect(loaded.config.onboot!.map((e) => e.name)).toEqual(['one', 'two']);
    expect(loaded.config.volumes!.map((v) => v.name)).toEqual(['shared']);
  });

  it('positionOf maps merged paths back to each file', () => {
    const {loaded} = checkSources([
      {name: 'a.yml', text: a},
      {name: 'b.yml', text: b},
    ]);
    expect(loaded.positionOf(['onboot', 1, 'binds', 0])).toEqual({file: 'b.yml', line: 2, col: 40});
    expect(loaded.positionOf(['onboot', 0, 'image'])).toEqual({file: 'a.yml', line: 6, col: 24});
    expect(loaded.positionOf(['services', 0])).toEqual({file: 'b.yml', line: 4, col: 5});
    expect(loaded.positionOf(['kernel', 'image'])).toEqual({file: 'a.yml', line: 2, col: 10});
    // an absent field: the nearest existing ancestor
    expect(loaded.positionOf(['onboot', 1, 'capabilities', 3])).toEqual({file: 'b.yml', line: 2, col: 5});
    expect(loaded.positionOf(['volumes', 0, 'name'])).toEqual({file: 'a.yml', line: 4, col: 11});
  });

  it('later kernel fields win; problems name the file they are in', () => {
    const {loaded, problems} = checkSources([
      {name: 'a.yml', text: a},
      {name: 'b.yml', text: y('kernel:', '  cmdline: quiet', '  image: ""', 'services:', '  - {name: three, image: alpine}')},
      {name: 'c.yml', text: b},
    ]);
    expect(loaded.config.kernel).toEqual({image: 'linuxkit/kernel:6.6', cmdline: 'quiet'});
    expect(loaded.positionOf(['kernel', 'cmdline'])).toEqual({file: 'b.yml', line: 2, col: 12});
    expect(problems.map(formatProblem)).toEqual(['c.yml:4:12: duplicate service name "three" (first at b.yml:5:12)']);
  });

  it('a volume declared twice across files is reported', () => {
    expect(problems(a, y('volumes:', '  - name: shared'))).toEqual(['f1.yml:2:11: duplicate volume name "shared" (first declared at f0.yml:4:11)']);
  });
});
