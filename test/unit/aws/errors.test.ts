// SDK errors become one-line TskitErrors; secrets never survive into a message.
import {describe, expect, it} from 'vitest';
import {awsError, isNotFound, redact} from '../../../providers/aws/errors.ts';

describe('redact', () => {
  it('masks credentials from the environment and anything shaped like one', () => {
    const env = {AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', AWS_SESSION_TOKEN: 'FwoGZXIvYXdzEBYaDHqa0AP1/token+value'};
    const text = `key AKIAIOSFODNN7EXAMPLE secret ${env.AWS_SECRET_ACCESS_KEY} token ${env.AWS_SESSION_TOKEN} url https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc123&x=1 Signature=${'a'.repeat(64)} aws_secret_access_key = shh`;
    const out = redact(text, env);
    for (const secret of ['AKIAIOSFODNN7EXAMPLE', env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, 'abc123', 'a'.repeat(64), 'shh']) expect(out).not.toContain(secret);
    expect(out).toContain('X-Amz-Signature=***');
    expect(out).toContain('&x=1');
  });
});

describe('awsError', () => {
  it('names the operation and says what to do, on one line', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {code: 'ECONNREFUSED', $metadata: {attempts: 3}});
    expect(awsError(refused, 'PutSnapshotBlock').message).toBe('AWS PutSnapshotBlock failed after 3 attempts: connect ECONNREFUSED 127.0.0.1:9: the endpoint is unreachable or not answering; check the network and AWS_ENDPOINT_URL, then run the command again');
    const denied = Object.assign(new Error('You are not authorized\nto perform this operation.'), {name: 'UnauthorizedOperation', $metadata: {httpStatusCode: 403}});
    expect(awsError(denied, 'RunInstances').message).toBe('AWS refused RunInstances (UnauthorizedOperation): You are not authorized: check your credentials and their IAM permissions');
    expect(awsError(Object.assign(new Error('Region is missing'), {name: 'Error'}), 'x').message).toMatch(/^no AWS region set/);
  });

  it('recognises not-found answers', () => {
    expect(isNotFound(Object.assign(new Error(''), {name: 'InvalidInstanceID.NotFound'}))).toBe(true);
    expect(isNotFound(Object.assign(new Error(''), {name: 'NoSuchKey'}))).toBe(true);
    expect(isNotFound(Object.assign(new Error(''), {name: 'InvalidAMIID.Malformed'}))).toBe(true);
    expect(isNotFound(Object.assign(new Error(''), {name: 'ThrottlingException'}))).toBe(false);
  });
});
