// The AWS test peer: moto's server for the control plane, the EC2 proxy in front of it for
// what moto lacks (and QEMU for the machines), optionally a fault proxy in front of both.
// `env` is what tskit needs to talk to it through the SDK's own settings. Test material.
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {EC2Client} from '@aws-sdk/client-ec2';
import {EBSClient} from '@aws-sdk/client-ebs';
import {S3Client} from '@aws-sdk/client-s3';
import {startEc2Proxy, type Ec2Proxy, type Ec2ProxyOptions} from './ec2-proxy.ts';
import {startMoto, type Moto} from './moto.ts';

export const PEER_REGION = 'us-east-1';
/** Fake credentials, distinctive so tests can prove they never appear in output. */
export const PEER_ACCESS_KEY = 'AKIATSKITPEERTEST001';
export const PEER_SECRET = 'tskitPeerSecret/DoNotPrint+0123456789abcdef';

export interface AwsPeer {
  moto: Moto;
  proxy: Ec2Proxy;
  /** The endpoint tskit talks to (the proxy). */
  endpoint: string;
  /** A private state dir (journals, upload state) and HOME, so nothing of the host's leaks in. */
  home: string;
  /** Environment for a tskit child process: credentials, region, endpoint; no IMDS, no host profiles. */
  env(overrides?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** SDK clients straight to moto, for checking what tskit did. */
  ec2: EC2Client;
  ebs: EBSClient;
  s3: S3Client;
  stop(): Promise<void>;
}

export async function startAwsPeer(options: Partial<Omit<Ec2ProxyOptions, 'motoUrl' | 'region'>> = {}): Promise<AwsPeer> {
  const moto = await startMoto();
  let proxy: Ec2Proxy;
  try {
    proxy = await startEc2Proxy({motoUrl: moto.url, region: PEER_REGION, ...options});
  } catch (error) {
    await moto.stop();
    throw error;
  }
  const home = await mkdtemp(join(tmpdir(), 'tskit-aws-home-'));
  const config = {endpoint: moto.url, region: PEER_REGION, credentials: {accessKeyId: 'check', secretAccessKey: 'check'}, forcePathStyle: true};
  const ec2 = new EC2Client(config);
  const ebs = new EBSClient(config);
  const s3 = new S3Client(config);
  return {
    moto,
    proxy,
    endpoint: proxy.url,
    home,
    env(overrides = {}) {
      return {
        HOME: home,
        TSKIT_STATE: join(home, 'state'),
        AWS_ENDPOINT_URL: proxy.url,
        AWS_REGION: PEER_REGION,
        AWS_ACCESS_KEY_ID: PEER_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: PEER_SECRET,
        AWS_SESSION_TOKEN: undefined,
        AWS_PROFILE: undefined,
        AWS_DEFAULT_REGION: undefined,
        AWS_CONFIG_FILE: join(home, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
        // Never reach for instance metadata (a link-local address) from a test.
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_MAX_ATTEMPTS: undefined,
        ...overrides,
      };
    },
    ec2,
    ebs,
    s3,
    async stop() {
      ec2.destroy();
      ebs.destroy();
      s3.destroy();
      await proxy.stop();
      await moto.stop();
      await rm(home, {recursive: true, force: true});
    },
  };
}
