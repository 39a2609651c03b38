// metadata: files and the Go encoders behind them (byte-level expectations derived by hand from
// encoding/json and yaml.v2's emitter; golden.test.ts checks whole files against LinuxKit).
import {describe, expect, it} from 'vitest';
import {checkSources} from '../../../src/config/load.ts';
import {renderMetadata} from '../../../src/config/metadata.ts';
import {goMarshalIndent, goJsonString} from '../../../src/config/go-json.ts';
import {mapping, yamlV2KeyLess, yamlV2Marshal} from '../../../src/config/go-yaml-v2.ts';
import {resolveV2, resolveV3} from '../../../src/config/go-scalars.ts';
import {expandReference} from '../../../src/config/image-ref-check.ts';

const load = (text: string) => {
  const {loaded, problems} = checkSources([{name: 'm.yml', text}]);
  expect(problems).toEqual([]);
  return loaded.config;
};

describe('renderMetadata', () => {
  const config = load(
    [
      'kernel:',
      '  image: linuxkit/kernel:6.6.71',
      '  cmdline: console=ttyS0',
      'init: [linuxkit/init:abc]',
      'onboot:',
      '  - name: dhcpcd',
      '    image: linuxkit/dhcpcd:v1',
      '    command: ["/sbin/dhcpcd", "-1"]',
      'services: []',
      'files:',
      '  - path: etc/config',
      '    metadata: yaml',
      '    mode: "0600"',
      'volumes:',
      '  - {name: v, image: alpine}',
      'trust:',
      '  org: [linuxkit]',
    ].join('\n'),
  );

  it('json: expanded references, null for empty lists, no trust', () => {
    expect(renderMetadata(config, 'json')).toBe(`{
    "kernel": {
        "image": "docker.io/linuxkit/kernel:6.6.71",
        "cmdline": "console=ttyS0"
    },
    "init": [
        "docker.io/linuxkit/init:abc"
    ],
    "onboot": [
        {
            "name": "dhcpcd",
            "image": "docker.io/linuxkit/dhcpcd:v1",
            "command": [
                "/sbin/dhcpcd",
                "-1"
            ]
        }
    ],
    "onshutdown": null,
    "services": null,
    "files": [
        {
            "path": "etc/config",
            "directory": false,
            "metadata": "yaml",
            "optional": false,
            "mode": "0600"
        }
    ],
    "volumes": [
        {
            "name": "v",
            "image": "alpine"
        }
    ]
}`);
  });

  it('yaml: yaml.v2 layout and quoting', () => {
    expect(renderMetadata(config, 'yaml')).toBe(`kernel:
  image: docker.io/linuxkit/kernel:6.6.71
  cmdline: console=ttyS0
init:
- docker.io/linuxkit/init:abc
onboot:
- name: dhcpcd
  image: docker.io/linuxkit/dhcpcd:v1
  command:
  - /sbin/dhcpcd
  - "-1"
onshutdown: []
services: []
files:
- path: etc/config
  directory: false
  metadata: yaml
  optional: false
  mode: "0600"
volumes:
- name: v
  image: alpine
`);
  });

  it('an empty config', () => {
    expect(renderMetadata({}, 'yaml')).toBe('kernel:\n  image: ""\ninit: []\nonboot: []\nonshutdown: []\nservices: []\nfiles: []\nvolumes: []\n');
  });
});

describe('Go encoders', () => {
  it('encoding/json escaping and layout', () => {
    expect(goJsonString('<a&b>\u2028\n\t"\\\u0001\u007f\ud800')).toBe('"\\u003ca\\u0026b\\u003e\\u2028\\n\\t\\"\\\\\\u0001\u007f\\ufffd"');
    expect(goMarshalIndent({a: [], b: {}, c: undefined, d: null, e: 18446744073709551615n, m: new Map([['b', 1], ['a', 2], ['B', 3]])})).toBe(
      '{\n    "a": [],\n    "b": {},\n    "d": null,\n    "e": 18446744073709551615,\n    "m": {\n        "B": 3,\n        "a": 2,\n        "b": 1\n    }\n}',
    );
  });

  it('yaml.v2 scalar styles', () => {
    const out = yamlV2Marshal(
      mapping([
        ['plain', 'hello world'],
        ['bool-like', 'on'],
        ['octal-like', '0644'],
        ['indicator', '- x'],
        ['quote', "it's"],
        ['tab', 'a\tb'],
        ['empty', ''],
        ['multi', 'a\nb\n'],
        ['keep', 'a\n\n'],
        ['strip', 'a\nb'],
        ['lead', ' a\nb\n'],
        ['list', []],
        ['map', mapping([])],
        ['num', -5],
        ['null', null],
      ]),
    );
    expect(out).toBe(
      [
        'plain: hello world',
        'bool-like: "on"',
        'octal-like: "0644"',
        "indicator: '- x'",
        "quote: it's",
        'tab: "a\\tb"',
        'empty: ""',
        'multi: |',
        '  a',
        '  b',
        'keep: |+',
        '  a',
        '',
        'strip: |-',
        '  a',
        '  b',
        'lead: |2',
        '   a',
        '  b',
        'list: []',
        'map: {}',
        'num: -5',
        '"null": null',
        '',
      ].join('\n'),
    );
  });

  it('yaml.v2 folds long plain text at the first space past column 80', () => {
    const words = Array.from({length: 30}, (_, i) => `w${i}`).join(' ');
    const out = yamlV2Marshal(mapping([['k', words]]));
    const [first, second] = out.split('\n');
    expect(first!.length).toBeGreaterThan(80);
    expect(first!.slice(0, 81).includes(' ')).toBe(true);
    expect(second!.startsWith('  w')).toBe(true);
    expect(out.replace(/\n  /g, ' ')).toBe(`k: ${words}\n`);
  });

  it('yaml.v2 map key order: numbers by value, letters by code point', () => {
    const keys = ['b', 'a10', '10', 'a9', '9', 'A', 'a'];
    expect([...keys].sort((x, y) => (yamlV2KeyLess(x, y) ? -1 : yamlV2KeyLess(y, x) ? 1 : 0))).toEqual(['9', '10', 'A', 'a', 'a9', 'a10', 'b']);
  });

  it('scalar resolution of yaml.v3 (reading) and yaml.v2 (writing)', () => {
    expect(resolveV3('yes')).toEqual({tag: 'str', value: 'yes'});
    expect(resolveV2('yes')).toEqual({tag: 'bool', value: true});
    expect(resolveV3('0755')).toEqual({tag: 'int', value: 493n});
    expect(resolveV3('0x1F')).toEqual({tag: 'int', value: 31n});
    expect(resolveV3('1_000')).toEqual({tag: 'int', value: 1000n});
    expect(resolveV3('18446744073709551615')).toEqual({tag: 'int', value: 18446744073709551615n});
    expect(resolveV3('08')).toEqual({tag: 'float', value: 8});
    expect(resolveV3('1e400')).toEqual({tag: 'str', value: '1e400'});
    expect(resolveV3('2001-12-14')).toEqual({tag: 'timestamp', value: '2001-12-14'});
    expect(resolveV3('2001-13-14')).toEqual({tag: 'str', value: '2001-13-14'});
    expect(resolveV3('.5')).toEqual({tag: 'float', value: 0.5});
    expect(resolveV3('~')).toEqual({tag: 'null', value: null});
  });

  it('reference expansion as LinuxKit writes it (no tag added)', () => {
    expect(expandReference('alpine')).toBe('docker.io/library/alpine');
    expect(expandReference('alpine:3.20')).toBe('docker.io/library/alpine:3.20');
    expect(expandReference('linuxkit/init:abc')).toBe('docker.io/linuxkit/init:abc');
    expect(expandReference('localhost/foo')).toBe('localhost/foo');
    expect(expandReference('localhost:5000/foo')).toBe('localhost:5000/foo');
    expect(expandReference('ghcr.io/a/b')).toBe('ghcr.io/a/b');
    expect(expandReference('a/b/c')).toBe('a/b/c');
  });
});
