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
  /** The EBS and S3 clients: only after `load('ebs')` / `load('s3')` (each SDK client costs 25-90 MB). */
  readonly ebs: EBSClient;
  readonly s3: S3Client;
  sdk: {ec2: Ec2Module; readonly ebs: EbsModule; readonly s3: S3Module};
  /** Loads a service's SDK module and makes its client; idempotent. */
  load(service: 'ebs' | 's3'): Promise<void>;
  destroy(): void;
}

/** Creates the clients (EC2 at once, EBS and S3 on `load`). Throws (an SDK error) when no region is configured anywhere. */
export async function createClients(options: AwsClientOptions = {}): Promise<AwsClients> {
  const ec2Module = await import('@aws-sdk/client-ec2');
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
  const ec2 = new ec2Module.EC2Client(common);
  const region = await ec2.config.region();
  let ebs: {client: EBSClient; sdk: EbsModule} | undefined;
  let s3: {client: S3Client; sdk: S3Module} | undefined;
  const missing = (service: string): never => {
    throw new Error(`aws: the ${service} client was used before load('${service}')`);
  };
  const sdk = {
    ec2: ec2Module,
    get ebs(): EbsModule {
      return ebs?.sdk ?? missing('ebs');
    },
    get s3(): S3Module {
      return s3?.sdk ?? missing('s3');
    },
  };
  return {
    region,
    ec2,
    get ebs(): EBSClient {
      return ebs?.client ?? missing('ebs');
    },
    get s3(): S3Client {
      return s3?.client ?? missing('s3');
    },
    sdk,
    async load(service) {
      if (service === 'ebs' && !ebs) {
        const module = await import('@aws-sdk/client-ebs');
        ebs ??= {client: new module.EBSClient({...common, region}), sdk: module};
      }
      if (service === 's3' && !s3) {
        const module = await import('@aws-sdk/client-s3');
        // Path-style addressing only matters for custom endpoints (an IP has no bucket subdomains).
        const pathStyle = Boolean(process.env.AWS_ENDPOINT_URL || process.env.AWS_ENDPOINT_URL_S3);
        s3 ??= {client: new module.S3Client({...common, region, ...(pathStyle ? {forcePathStyle: true} : {})}), sdk: module};
      }
    },
    destroy() {
      ec2.destroy();
      ebs?.client.destroy();
      s3?.client.destroy();
    },
  };
}

/** Whether the SDK's partition data lists `region` (new regions may be missing from an older SDK). */
export async function isKnownRegion(region: string): Promise<boolean> {
  const {partition} = await import('@aws-sdk/core/client');
  return 'description' in (partition(region) as object);
}
