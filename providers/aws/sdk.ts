// The AWS SDK v3 clients, loaded on first use (a dynamic import), so `tskit --help`,
// `tskit build` and `tskit run qemu` never pay for the SDK's ~40 MB of modules.
//
// Credentials, region and endpoint come only from the SDK's own chain and settings: the
// environment (AWS_ACCESS_KEY_ID..., AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL and the
// per-service AWS_ENDPOINT_URL_EC2/_EBS/_S3), shared config and credentials files, SSO,
// process credentials, web identity, container and instance metadata. tskit adds only
// timeouts and its retry policy (retry.ts).
import type {EC2Client} from '@aws-sdk/client-ec2';
import type {EBSClient} from '@aws-sdk/client-ebs';
import type {S3Client} from '@aws-sdk/client-s3';
import {BudgetRetryStrategy, retryPolicyFromEnv, type RetryPolicy} from './retry.ts';

export type Ec2Module = typeof import('@aws-sdk/client-ec2');
export type EbsModule = typeof import('@aws-sdk/client-ebs');
export type S3Module = typeof import('@aws-sdk/client-s3');

export interface AwsClientOptions {
  /** Overrides the chain's region (the SDK's `region` setting). */
  region?: string;
  retry?: RetryPolicy;
  /** Sockets per client: as many requests as an upload runs in parallel, plus a few. */
  maxSockets?: number;
  /** Milliseconds to establish a connection. */
  connectTimeoutMs?: number;
  /** Milliseconds a socket may sit idle mid-request (uploads from outside AWS stall without it). */
  readTimeoutMs?: number;
  /** Milliseconds one attempt may take in all. */
  requestTimeoutMs?: number;
}

export interface AwsClients {
  region: string;
  ec2: EC2Client;
  ebs: EBSClient;
  s3: S3Client;
  sdk: {ec2: Ec2Module; ebs: EbsModule; s3: S3Module};
  destroy(): void;
}

let modules: Promise<{ec2: Ec2Module; ebs: EbsModule; s3: S3Module}> | undefined;

export function loadSdk(): Promise<{ec2: Ec2Module; ebs: EbsModule; s3: S3Module}> {
  modules ??= Promise.all([import('@aws-sdk/client-ec2'), import('@aws-sdk/client-ebs'), import('@aws-sdk/client-s3')]).then(([ec2, ebs, s3]) => ({ec2, ebs, s3}));
  return modules;
}

/** Creates the three clients. Throws (an SDK error) when no region is configured anywhere. */
export async function createClients(options: AwsClientOptions = {}): Promise<AwsClients> {
  const sdk = await loadSdk();
  const common = {
    ...(options.region ? {region: options.region} : {}),
    retryStrategy: new BudgetRetryStrategy(options.retry ?? retryPolicyFromEnv()),
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 10_000,
      socketTimeout: options.readTimeoutMs ?? 30_000,
      requestTimeout: options.requestTimeoutMs ?? 120_000,
      throwOnRequestTimeout: true,
      httpAgent: {keepAlive: true, maxSockets: options.maxSockets ?? 32},
      httpsAgent: {keepAlive: true, maxSockets: options.maxSockets ?? 32},
    },
  };
  const ec2 = new sdk.ec2.EC2Client(common);
  const ebs = new sdk.ebs.EBSClient(common);
  // Path-style addressing only matters for custom endpoints (an IP has no bucket subdomains).
  const s3 = new sdk.s3.S3Client({...common, ...(process.env.AWS_ENDPOINT_URL || process.env.AWS_ENDPOINT_URL_S3 ? {forcePathStyle: true} : {})});
  const region = await ec2.config.region();
  return {
    region,
    ec2,
    ebs,
    s3,
    sdk,
    destroy() {
      ec2.destroy();
      ebs.destroy();
      s3.destroy();
    },
  };
}

/** Whether the SDK's partition data lists `region` (new regions may be missing from an older SDK). */
export async function isKnownRegion(region: string): Promise<boolean> {
  const {partition} = await import('@aws-sdk/core/client');
  return 'description' in (partition(region) as object);
}
