// An HTTP proxy in front of moto that makes it behave like EC2 where moto falls short,
// following the EC2 API reference, and forwards everything else untouched. Test material.
//
// - ImportSnapshot / DescribeImportSnapshotTasks / CancelImportTask (moto: not implemented):
//   reads the S3 object from moto, converts a VMDK with qemu-img, writes the non-zero 512 KiB
//   blocks into a new snapshot through moto's EBS direct APIs, and walks the task through
//   EC2's statuses (active: pending → validating → validated → converting → completed;
//   a bad disk ends `deleted` with "ClientError: ...").
// - RegisterImage / DescribeImages (moto ignores the block device mapping, boot mode,
//   architecture, ENA and tags): remembers them and puts them back into DescribeImages.
// - RunInstances: forwarded, then each instance boots in QEMU from its AMI's snapshot bytes,
//   read back through the EBS direct APIs (NVMe disk as on Nitro; OVMF for uefi AMIs).
// - GetConsoleOutput (moto: a fixed sample text): the VM's real serial output, base64, the
//   most recent `consoleWindow` bytes as Nitro's Latest=true does.
// - TerminateInstances / StopInstances: forwarded, the VM stopped; terminated instances' network
//   interfaces are deleted as EC2 deletes primary interfaces (moto keeps them).
// - A VM that powers off by itself stops its instance with Client.InstanceInitiatedShutdown.
// - EBS direct APIs: blocks for a snapshot EC2 deleted are refused (ResourceNotFoundException),
//   and so are writes to a completed one (ValidationException), as AWS does; moto takes them.
import {spawn, execFile, type ChildProcess} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import {mkdtemp, open, rm, stat} from 'node:fs/promises';
import {createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse} from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {pipeline} from 'node:stream/promises';
import {createWriteStream} from 'node:fs';
import {promisify} from 'node:util';
import {EC2Client, CreateTagsCommand, DescribeNetworkInterfacesCommand, DeleteNetworkInterfaceCommand, StopInstancesCommand} from '@aws-sdk/client-ec2';
import {EBSClient, StartSnapshotCommand, PutSnapshotBlockCommand, CompleteSnapshotCommand, ListSnapshotBlocksCommand, GetSnapshotBlockCommand} from '@aws-sdk/client-ebs';
import {S3Client, GetObjectCommand, HeadObjectCommand} from '@aws-sdk/client-s3';
import {findOvmf} from '../../providers/qemu/firmware.ts';

const execFileP = promisify(execFile);
const BLOCK = 512 * 1024;
const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export interface Ec2ProxyOptions {
  motoUrl: string;
  region: string;
  /** Bytes GetConsoleOutput returns at most (EC2: 64 KiB). */
  consoleWindow?: number;
  /** Milliseconds between import task statuses. */
  importStepMs?: number;
  /** Boot instances in QEMU (default true). */
  boot?: boolean;
  memMiB?: number;
  /** EC2 actions answered with 403 UnauthorizedOperation, as for a policy without them (changeable). */
  deny?: Set<string>;
}

interface ImageMeta {
  architecture?: string;
  bootMode?: string;
  rootDeviceName?: string;
  ena?: boolean;
  mappings: {deviceName: string; snapshotId?: string; deleteOnTermination?: boolean; volumeType?: string}[];
}

interface Vm {
  instanceId: string;
  process?: ChildProcess;
  console: Buffer[];
  consoleBytes: number;
  /** Set when the API stopped or terminated it (not the guest). */
  stoppedByApi: boolean;
  exited: Promise<void>;
  error?: string;
}

interface ImportTask {
  id: string;
  description: string;
  bucket: string;
  key: string;
  format: string;
  status: string;
  statusMessage: string;
  progress: number;
  snapshotId?: string;
  diskImageSize?: number;
  tags: {key: string; value: string}[];
  cancelled: boolean;
}

export interface Ec2Proxy {
  url: string;
  /** Every EC2 Action the proxy saw, in order (for tests). */
  actions: string[];
  vms: Map<string, Vm>;
  /** The whole serial output of an instance's VM so far. */
  consoleOf(instanceId: string): Buffer;
  stop(): Promise<void>;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function xmlResponse(res: ServerResponse, action: string, body: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${XMLNS}"><requestId>${randomBytes(8).toString('hex')}</requestId>${body}</${action}Response>`;
  res.writeHead(200, {'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(text)});
  res.end(text);
}

function xmlError(res: ServerResponse, status: number, code: string, message: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${randomBytes(8).toString('hex')}</RequestID></Response>`;
  res.writeHead(status, {'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(text)});
  res.end(text);
}

/** EC2 query lists: Prefix.1, Prefix.2 ... (of scalars). */
function list(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params.has(`${prefix}.${i}`); i++) out.push(params.get(`${prefix}.${i}`)!);
  return out;
}

function tagSpecs(params: URLSearchParams, resourceType: string): {key: string; value: string}[] {
  const tags: {key: string; value: string}[] = [];
  for (let i = 1; params.has(`TagSpecification.${i}.ResourceType`); i++) {
    if (params.get(`TagSpecification.${i}.ResourceType`) !== resourceType) continue;
    for (let j = 1; params.has(`TagSpecification.${i}.Tag.${j}.Key`); j++) tags.push({key: params.get(`TagSpecification.${i}.Tag.${j}.Key`)!, value: params.get(`TagSpecification.${i}.Tag.${j}.Value`) ?? ''});
  }
  return tags;
}

/** Rewrites each top-level <item> of every <container> element (moto writes compact XML). */
function patchItems(xml: string, container: string, patch: (item: string) => string): string {
  let out = '';
  let at = 0;
  const open = `<${container}>`;
  for (let start = xml.indexOf(open, at); start >= 0; start = xml.indexOf(open, at)) {
    let pos = start + open.length;
    out += xml.slice(at, pos);
    for (;;) {
      if (!xml.startsWith('<item>', pos)) break;
      // Find the matching </item>, counting nested items.
      let depth = 0;
      let scan = pos;
      const tag = /<(\/?)item>/g;
      for (;;) {
        tag.lastIndex = scan;
        const m = tag.exec(xml);
        if (!m) return xml;
        depth += m[1] ? -1 : 1;
        scan = m.index + m[0].length;
        if (depth === 0) break;
      }
      out += patch(xml.slice(pos, scan));
      pos = scan;
    }
    at = pos;
  }
  return out + xml.slice(at);
}

/** The body is forwarded whole with a content-length: the client's chunked framing is gone. */
function withoutChunking(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const {'transfer-encoding': _te, ...rest} = headers;
  return rest;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startEc2Proxy(options: Ec2ProxyOptions): Promise<Ec2Proxy> {
  const moto = new URL(options.motoUrl);
  const sdkConfig = {endpoint: options.motoUrl, region: options.region, credentials: {accessKeyId: 'peer', secretAccessKey: 'peer'}, forcePathStyle: true};
  const ec2 = new EC2Client(sdkConfig);
  const ebs = new EBSClient(sdkConfig);
  const s3 = new S3Client(sdkConfig);
  const workDir = await mkdtemp(join(tmpdir(), 'tskit-aws-peer-'));
  const images = new Map<string, ImageMeta>();
  const vms = new Map<string, Vm>();
  const tasks = new Map<string, ImportTask>();
  const disks = new Map<string, Promise<string>>();
  const guestShutdown = new Set<string>();
  const actions: string[] = [];
  const window = options.consoleWindow ?? 64 * 1024;
  const stepMs = options.importStepMs ?? 300;
  let closed = false;

  const forward = (req: IncomingMessage, body: Buffer): Promise<{status: number; headers: Record<string, string | string[]>; body: Buffer}> =>
    new Promise((resolve, reject) => {
      const upstream = httpRequest({host: moto.hostname, port: moto.port, method: req.method, path: req.url, headers: {...withoutChunking(req.headers), host: moto.host, 'content-length': String(body.length)}}, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({status: res.statusCode ?? 502, headers: res.headers as Record<string, string | string[]>, body: Buffer.concat(chunks)}));
        res.on('error', reject);
      });
      upstream.on('error', reject);
      upstream.end(body);
    });

  const send = (res: ServerResponse, answer: {status: number; headers: Record<string, string | string[]>; body: Buffer}, body = answer.body): void => {
    // A HEAD answer's content-length is the object's, not this (empty) body's.
    const headers: Record<string, string | string[]> = res.req.method === 'HEAD' ? {...answer.headers} : {...answer.headers, 'content-length': String(body.length)};
    delete headers['transfer-encoding'];
    res.writeHead(answer.status, headers);
    res.end(body);
  };

  // --- disks and VMs -------------------------------------------------------------------

  const materialize = (snapshotId: string): Promise<string> => {
    let disk = disks.get(snapshotId);
    if (!disk) {
      disk = (async () => {
        const path = join(workDir, `${snapshotId}.raw`);
        const listing = await ebs.send(new ListSnapshotBlocksCommand({SnapshotId: snapshotId}));
        const file = await open(path, 'w');
        try {
          for (const block of listing.Blocks ?? []) {
            const got = await ebs.send(new GetSnapshotBlockCommand({SnapshotId: snapshotId, BlockIndex: Number(block.BlockIndex), BlockToken: block.BlockToken!}));
            const data = Buffer.from(await got.BlockData!.transformToByteArray());
            await file.write(data, 0, data.length, Number(block.BlockIndex) * BLOCK);
          }
          await file.truncate((listing.VolumeSize ?? 1) * 1024 ** 3);
        } finally {
          await file.close();
        }
        return path;
      })();
      disks.set(snapshotId, disk);
    }
    return disk;
  };

  const trace = (line: string) => {
    if (process.env.TSKIT_AWS_PEER_TRACE) process.stderr.write(`[aws-peer ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
  };

  const boot = async (vm: Vm, imageId: string): Promise<void> => {
    trace(`${vm.instanceId}: boot ${imageId}`);
    const meta = images.get(imageId);
    const root = meta?.mappings.find((m) => m.deviceName === meta.rootDeviceName) ?? meta?.mappings[0];
    if (!meta || !root?.snapshotId) {
      vm.error = `no snapshot for ${imageId}`;
      return;
    }
    if (meta.architecture && meta.architecture !== 'x86_64') {
      vm.error = `cannot emulate ${meta.architecture}`;
      return;
    }
    const disk = await materialize(root.snapshotId);
    if (closed || vm.stoppedByApi) return;
    // uefi-preferred boots UEFI on Nitro types, which all support it.
    const firmware = meta.bootMode === 'uefi' || meta.bootMode === 'uefi-preferred' ? await findOvmf() : undefined;
    const args = [
      '--pdeathsig', 'KILL', '--', 'qemu-system-x86_64',
      '-accel', 'tcg', '-M', 'pc', '-m', String(options.memMiB ?? 512), '-nodefaults', '-display', 'none', '-no-reboot',
      '-serial', 'stdio', '-snapshot',
      '-drive', `file=${disk},format=raw,if=none,id=root`, '-device', `nvme,drive=root,serial=${vm.instanceId.replace(/[^a-z0-9]/g, '')}`,
      '-device', 'virtio-rng-pci',
      ...(firmware ? ['-bios', firmware] : []),
    ];
    trace(`${vm.instanceId}: qemu ${firmware ? 'uefi' : 'bios'} on ${disk}`);
    const child = spawn('setpriv', args, {stdio: ['ignore', 'pipe', 'pipe']});
    vm.process = child;
    child.stdout!.on('data', (chunk: Buffer) => {
      vm.console.push(chunk);
      vm.consoleBytes += chunk.length;
    });
    let qemuErrors = '';
    child.stderr!.on('data', (chunk: Buffer) => (qemuErrors = (qemuErrors + chunk.toString()).slice(-2000)));
    child.once('close', (code, signal) => {
      if (!vm.stoppedByApi && !closed && code !== 0) process.stderr.write(`[aws-peer] ${vm.instanceId}: qemu exited ${code ?? signal}: ${qemuErrors.trim()}\n`);
    });
    // 'close', not 'exit': a guest's last bytes may still be in the pipe when qemu has exited,
    // and EC2 keeps the whole console of a stopped instance
    vm.exited = new Promise((resolve) => child.once('close', () => resolve()));
    child.once('close', () => {
      if (vm.stoppedByApi || closed) return;
      // The guest powered off (or reset: -no-reboot ends qemu too): EC2 stops the instance.
      guestShutdown.add(vm.instanceId);
      ec2.send(new StopInstancesCommand({InstanceIds: [vm.instanceId]})).catch(() => {});
    });
  };

  const stopVm = async (id: string): Promise<void> => {
    const vm = vms.get(id);
    if (!vm) return;
    trace(`${id}: stopped by the API with ${vm.consoleBytes} console bytes${vm.process ? '' : ' (qemu never started)'}${vm.error ? `, error ${vm.error}` : ''}, ending ${JSON.stringify(Buffer.concat(vm.console).subarray(-300).toString())}`);
    vm.stoppedByApi = true;
    if (vm.process && vm.process.exitCode === null && vm.process.signalCode === null) vm.process.kill('SIGKILL');
    await vm.exited;
  };

  // --- import tasks --------------------------------------------------------------------

  const runImport = async (task: ImportTask): Promise<void> => {
    const step = async (status: string, message: string, progress: number): Promise<boolean> => {
      await new Promise((r) => setTimeout(r, stepMs));
      if (task.cancelled || closed) return false;
      Object.assign(task, {status, statusMessage: message, progress});
      return true;
    };
    const fail = (message: string): void => {
      Object.assign(task, {status: 'deleted', statusMessage: message, progress: 0});
    };
    const dir = await mkdtemp(join(workDir, 'import-'));
    try {
      if (!(await step('active', 'validating', 0))) return;
      let head;
      try {
        head = await s3.send(new HeadObjectCommand({Bucket: task.bucket, Key: task.key}));
      } catch {
        return fail(`ClientError: Unable to access the S3 object s3://${task.bucket}/${task.key}`);
      }
      task.diskImageSize = head.ContentLength ?? 0;
      const object = join(dir, 'object');
      const got = await s3.send(new GetObjectCommand({Bucket: task.bucket, Key: task.key}));
      await pipeline(got.Body as NodeJS.ReadableStream, createWriteStream(object));
      let raw = object;
      if (task.format === 'VMDK') {
        try {
          const info = JSON.parse((await execFileP('qemu-img', ['info', '--output=json', '-f', 'vmdk', object])).stdout) as {'virtual-size': number};
          if (!info['virtual-size']) throw new Error('empty');
        } catch {
          return fail('ClientError: Disk validation failed [Unsupported specified file format]');
        }
      } else if ((await stat(object)).size % 512 !== 0) {
        return fail('ClientError: Disk validation failed [Unsupported specified file format]');
      }
      if (!(await step('active', 'validated', 5))) return;
      if (!(await step('active', 'converting', 20))) return;
      if (task.format === 'VMDK') {
        raw = join(dir, 'disk.raw');
        await execFileP('qemu-img', ['convert', '-q', '-f', 'vmdk', '-O', 'raw', object, raw]);
      }
      const size = (await stat(raw)).size;
      const started = await ebs.send(new StartSnapshotCommand({VolumeSize: Math.max(1, Math.ceil(size / 1024 ** 3)), Description: task.description}));
      const snapshotId = started.SnapshotId!;
      const file = await open(raw, 'r');
      let count = 0;
      const zero = Buffer.alloc(BLOCK);
      try {
        for (let offset = 0; offset < size; offset += BLOCK) {
          const data = Buffer.alloc(BLOCK);
          await file.read(data, 0, Math.min(BLOCK, size - offset), offset);
          if (data.equals(zero)) continue;
          await ebs.send(new PutSnapshotBlockCommand({SnapshotId: snapshotId, BlockIndex: offset / BLOCK, BlockData: data, DataLength: BLOCK, Checksum: createHash('sha256').update(data).digest('base64'), ChecksumAlgorithm: 'SHA256'}));
          count++;
        }
      } finally {
        await file.close();
      }
      await ebs.send(new CompleteSnapshotCommand({SnapshotId: snapshotId, ChangedBlocksCount: count}));
      if (!(await step('active', 'converting', 80))) return;
      Object.assign(task, {status: 'completed', statusMessage: '', progress: 100, snapshotId});
    } catch (error) {
      fail(`ServerError: ${(error as Error).message}`);
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  };

  const taskXml = (task: ImportTask): string =>
    `<description>${esc(task.description)}</description><importTaskId>${task.id}</importTaskId><snapshotTaskDetail>` +
    `${task.diskImageSize !== undefined ? `<diskImageSize>${task.diskImageSize}.0</diskImageSize>` : ''}<format>${task.format}</format>` +
    `${task.status === 'completed' ? '' : `<progress>${task.progress}</progress>`}${task.snapshotId ? `<snapshotId>${task.snapshotId}</snapshotId>` : ''}` +
    `<status>${task.status}</status>${task.statusMessage ? `<statusMessage>${esc(task.statusMessage)}</statusMessage>` : ''}` +
    `<userBucket><s3Bucket>${esc(task.bucket)}</s3Bucket><s3Key>${esc(task.key)}</s3Key></userBucket></snapshotTaskDetail>` +
    `<tagSet>${task.tags.map((t) => `<item><key>${esc(t.key)}</key><value>${esc(t.value)}</value></item>`).join('')}</tagSet>`;

  // --- DescribeImages patching -----------------------------------------------------------

  const patchImages = (xml: string): string =>
    patchItems(xml, 'imagesSet', (item) => {
      const id = /<imageId>(ami-[0-9a-f]+)<\/imageId>/.exec(item)?.[1];
      const meta = id ? images.get(id) : undefined;
      if (!meta) return item;
      const mappings = meta.mappings
        .map((m) => `<item><deviceName>${esc(m.deviceName)}</deviceName><ebs>${m.snapshotId ? `<snapshotId>${m.snapshotId}</snapshotId>` : ''}<deleteOnTermination>${m.deleteOnTermination ?? true}</deleteOnTermination><volumeType>${m.volumeType ?? 'gp3'}</volumeType></ebs></item>`)
        .join('');
      let patched = item.replace(/<blockDeviceMapping>[\s\S]*?<\/blockDeviceMapping>|<blockDeviceMapping\/>/, `<blockDeviceMapping>${mappings}</blockDeviceMapping>`);
      if (meta.rootDeviceName) patched = patched.replace(/<rootDeviceName>[^<]*<\/rootDeviceName>/, `<rootDeviceName>${esc(meta.rootDeviceName)}</rootDeviceName>`);
      patched = patched.replace(/<rootDeviceType>[^<]*<\/rootDeviceType>/, '<rootDeviceType>ebs</rootDeviceType>');
      if (meta.bootMode) patched = patched.replace(/<bootMode>[^<]*<\/bootMode>/, `<bootMode>${meta.bootMode}</bootMode>`);
      const extra = `${meta.architecture ? `<architecture>${meta.architecture}</architecture>` : ''}<virtualizationType>hvm</virtualizationType>${meta.ena !== undefined ? `<enaSupport>${meta.ena}</enaSupport>` : ''}`;
      return patched.replace(/<imageId>/, `${extra}<imageId>`);
    });

  const patchInstances = (xml: string): string =>
    patchItems(xml, 'instancesSet', (item) => {
      const id = /<instanceId>(i-[0-9a-f]+)<\/instanceId>/.exec(item)?.[1];
      if (!id || !guestShutdown.has(id)) return item;
      return item.replace(/<stateReason>[\s\S]*?<\/stateReason>/, '<stateReason><code>Client.InstanceInitiatedShutdown</code><message>Client.InstanceInitiatedShutdown: Instance initiated shutdown</message></stateReason>');
    });

  // --- the server ------------------------------------------------------------------------

  // moto's EBS direct APIs keep taking blocks for snapshots EC2 deleted or EBS completed;
  // AWS answers ResourceNotFoundException and ValidationException.
  const deletedSnapshots = new Set<string>();
  const completedSnapshots = new Set<string>();
  const ebsError = (res: ServerResponse, status: number, type: string, message: string, reason?: string): void => {
    const text = JSON.stringify({message, ...(reason ? {Reason: reason} : {})});
    res.writeHead(status, {'content-type': 'application/json', 'x-amzn-errortype': type, 'content-length': Buffer.byteLength(text)});
    res.end(text);
  };
  const handleEbs = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://peer').pathname;
    const id = /^\/snapshots\/(?:completion\/)?(snap-[0-9a-f]+)/.exec(path)?.[1];
    if (id && deletedSnapshots.has(id)) return ebsError(res, 404, 'ResourceNotFoundException', `The snapshot '${id}' does not exist.`, 'SNAPSHOT_NOT_FOUND');
    const writing = req.method === 'PUT' || path.startsWith('/snapshots/completion/');
    if (id && writing && completedSnapshots.has(id)) return ebsError(res, 400, 'ValidationException', `The snapshot '${id}' is not in pending state.`, 'INVALID_SNAPSHOT_ID');
    const answer = await forward(req, body);
    if (id && path.startsWith('/snapshots/completion/') && answer.status < 300) completedSnapshots.add(id);
    return send(res, answer);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const scope = /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\//.exec(String(req.headers.authorization ?? ''));
    const service = scope?.[2];
    if (service === 'ebs') return handleEbs(req, res, body);
    if (service !== 'ec2' || req.method !== 'POST') return send(res, await forward(req, body));
    const params = new URLSearchParams(body.toString('utf8'));
    const action = params.get('Action') ?? '';
    actions.push(action);
    if (options.deny?.has(action)) return xmlError(res, 403, 'UnauthorizedOperation', `You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/tskit-test is not authorized to perform: ec2:${action}`);
    switch (action) {
      case 'RegisterImage': {
        const answer = await forward(req, body);
        const id = /<imageId>(ami-[0-9a-f]+)<\/imageId>/.exec(answer.body.toString())?.[1];
        if (answer.status === 200 && id) {
          const mappings: ImageMeta['mappings'] = [];
          for (let i = 1; params.has(`BlockDeviceMapping.${i}.DeviceName`); i++) {
            const p = `BlockDeviceMapping.${i}`;
            mappings.push({
              deviceName: params.get(`${p}.DeviceName`)!,
              ...(params.get(`${p}.Ebs.SnapshotId`) ? {snapshotId: params.get(`${p}.Ebs.SnapshotId`)!} : {}),
              ...(params.has(`${p}.Ebs.DeleteOnTermination`) ? {deleteOnTermination: params.get(`${p}.Ebs.DeleteOnTermination`) === 'true'} : {}),
              ...(params.get(`${p}.Ebs.VolumeType`) ? {volumeType: params.get(`${p}.Ebs.VolumeType`)!} : {}),
            });
          }
          images.set(id, {
            ...(params.get('Architecture') ? {architecture: params.get('Architecture')!} : {architecture: 'x86_64'}),
            ...(params.get('BootMode') ? {bootMode: params.get('BootMode')!} : {}),
            ...(params.get('RootDeviceName') ? {rootDeviceName: params.get('RootDeviceName')!} : {}),
            ...(params.has('EnaSupport') ? {ena: params.get('EnaSupport') === 'true'} : {}),
            mappings,
          });
          const tags = tagSpecs(params, 'image');
          if (tags.length) await ec2.send(new CreateTagsCommand({Resources: [id], Tags: tags.map((t) => ({Key: t.key, Value: t.value}))}));
        }
        return send(res, answer);
      }
      case 'DescribeImages': {
        const answer = await forward(req, body);
        return send(res, answer, Buffer.from(patchImages(answer.body.toString('utf8'))));
      }
      case 'DeleteSnapshot': {
        const answer = await forward(req, body);
        if (answer.status === 200) deletedSnapshots.add(params.get('SnapshotId') ?? '');
        return send(res, answer);
      }
      case 'DeregisterImage': {
        const answer = await forward(req, body);
        if (answer.status === 200) images.delete(params.get('ImageId') ?? '');
        return send(res, answer);
      }
      case 'DescribeInstances': {
        const answer = await forward(req, body);
        return send(res, answer, Buffer.from(patchInstances(answer.body.toString('utf8'))));
      }
      case 'RunInstances': {
        const answer = await forward(req, body);
        if (answer.status === 200 && options.boot !== false) {
          const imageId = params.get('ImageId') ?? '';
          for (const [, id] of answer.body.toString().matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g)) {
            if (vms.has(id!)) continue;
            const vm: Vm = {instanceId: id!, console: [], consoleBytes: 0, stoppedByApi: false, exited: Promise.resolve()};
            vms.set(id!, vm);
            boot(vm, imageId).catch((error: Error) => (vm.error = error.message)).finally(() => {
              // a test that waits for a marker from a VM that never started should say why
              if (vm.error) process.stderr.write(`[aws-peer] ${vm.instanceId} did not boot: ${vm.error}\n`);
            });
          }
        }
        return send(res, answer);
      }
      case 'GetConsoleOutput': {
        const id = params.get('InstanceId') ?? '';
        const vm = vms.get(id);
        if (!vm) return send(res, await forward(req, body));
        const all = Buffer.concat(vm.console);
        const shown = all.subarray(Math.max(0, all.length - window));
        return xmlResponse(res, 'GetConsoleOutput', `<instanceId>${id}</instanceId><timestamp>${new Date().toISOString()}</timestamp>${shown.length ? `<output>${shown.toString('base64')}</output>` : ''}`);
      }
      case 'TerminateInstances':
      case 'StopInstances': {
        const ids = list(params, 'InstanceId');
        const answer = await forward(req, body);
        if (answer.status === 200) {
          await Promise.all(ids.map(stopVm));
          if (action === 'TerminateInstances') {
            for (const id of ids) {
              const enis = await ec2.send(new DescribeNetworkInterfacesCommand({Filters: [{Name: 'attachment.instance-id', Values: [id]}]}));
              // as EC2 does: only interfaces attached with DeleteOnTermination (those the launch made)
              for (const eni of enis.NetworkInterfaces ?? []) {
                if (eni.Attachment?.DeleteOnTermination === false) continue;
                await ec2.send(new DeleteNetworkInterfaceCommand({NetworkInterfaceId: eni.NetworkInterfaceId!})).catch(() => {});
              }
            }
          }
        }
        return send(res, answer);
      }
      case 'ImportSnapshot': {
        const format = (params.get('DiskContainer.Format') ?? '').toUpperCase();
        const bucket = params.get('DiskContainer.UserBucket.S3Bucket') ?? '';
        const key = params.get('DiskContainer.UserBucket.S3Key') ?? '';
        if (!['RAW', 'VMDK', 'VHD', 'VHDX'].includes(format)) return xmlError(res, 400, 'InvalidParameter', `Unsupported disk image format: ${format}`);
        if (!bucket || !key) return xmlError(res, 400, 'InvalidParameter', 'DiskContainer.UserBucket must name an S3 bucket and key');
        const token = params.get('ClientToken');
        const again = token ? [...tasks.values()].find((t) => (t as ImportTask & {token?: string}).token === token) : undefined;
        const task: ImportTask & {token?: string} = again ?? {
          id: `import-snap-${randomBytes(9).toString('hex').slice(0, 17)}`,
          description: params.get('Description') ?? '',
          bucket,
          key,
          format,
          status: 'active',
          statusMessage: 'pending',
          progress: 0,
          tags: tagSpecs(params, 'import-snapshot-task'),
          cancelled: false,
          ...(token ? {token} : {}),
        };
        if (!again) {
          tasks.set(task.id, task);
          void runImport(task);
        }
        return xmlResponse(res, 'ImportSnapshot', taskXml(task));
      }
      case 'DescribeImportSnapshotTasks': {
        const ids = list(params, 'ImportTaskId');
        const found = ids.length ? ids.map((id) => tasks.get(id)).filter((t): t is ImportTask => Boolean(t)) : [...tasks.values()];
        if (ids.length && found.length !== ids.length) return xmlError(res, 400, 'InvalidConversionTaskId.Malformed', `The import task ID '${ids.find((id) => !tasks.has(id))}' is malformed or does not exist`);
        return xmlResponse(res, 'DescribeImportSnapshotTasks', `<importSnapshotTaskSet>${found.map((t) => `<item>${taskXml(t)}</item>`).join('')}</importSnapshotTaskSet>`);
      }
      case 'CancelImportTask': {
        const task = tasks.get(params.get('ImportTaskId') ?? '');
        if (!task) return xmlError(res, 400, 'InvalidConversionTaskId', 'no such import task');
        if (task.status === 'completed' || task.status === 'deleted') return xmlError(res, 400, 'IncorrectState', `the import task is ${task.status}`);
        const previous = task.status;
        Object.assign(task, {cancelled: true, status: 'deleted', statusMessage: 'User initiated task cancelation'});
        return xmlResponse(res, 'CancelImportTask', `<importTaskId>${task.id}</importTaskId><previousState>${previous}</previousState><state>deleting</state>`);
      }
      default:
        return send(res, await forward(req, body));
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) xmlError(res, 500, 'InternalError', `peer proxy: ${error.message}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as {port: number};
  return {
    url: `http://127.0.0.1:${port}`,
    actions,
    vms,
    consoleOf: (id) => Buffer.concat(vms.get(id)?.console ?? []),
    async stop() {
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...vms.keys()].map(stopVm));
      ec2.destroy();
      ebs.destroy();
      s3.destroy();
      await rm(workDir, {recursive: true, force: true});
    },
  };
}
