// `check`, the pre-flight every provider runs before it creates anything: prove the
// credentials work with the cheapest signed call the cloud has, and say in one line what is
// wrong and what to do when they do not. A "permission denied" still proves the credentials
// (the cloud checked the signature before it said no), so a policy without the probe's
// permission does not block a push that needs other permissions.
import {execFile} from 'node:child_process';
import {TskitError} from '../errors.ts';

export interface CredentialProof {
  /** The cheapest authenticated read (AWS DescribeRegions, GCE projects.get, Azure subscriptions.get, vSphere SessionManager). */
  call(): Promise<unknown>;
  /** True for an answer that refuses the call but proves the caller is who it says (AccessDenied, 403 on a known project). */
  deniedStillProves?(error: unknown): boolean;
  /** The one-line TskitError for any other failure (no credentials, expired, unknown region, unreachable). */
  explain(error: unknown): Error;
}

/** 'ok' when the call succeeded, 'denied' when it was refused in a way that still proves the credentials; throws `explain(error)` otherwise. */
export async function proveCredentials(proof: CredentialProof): Promise<'ok' | 'denied'> {
  try {
    await proof.call();
    return 'ok';
  } catch (error) {
    if (proof.deniedStillProves?.(error)) return 'denied';
    throw proof.explain(error);
  }
}

/** Fails with how to install `command` when it is not on PATH (a provider that drives a local tool: qemu-img, ssh, pwsh). */
export async function requireTool(command: string, install: string): Promise<void> {
  const found = await new Promise<boolean>((resolve) => execFile('sh', ['-c', 'command -v "$1"', 'sh', command], (error) => resolve(!error)));
  if (!found) throw new TskitError(`${command} is not installed: ${install}`);
}
