// vfio-user messages against the server (src/vgpu/vfio-user) in its own process, as a
// VMM would reach it: mutations of valid commands of every kind (VERSION, DMA_MAP with a
// memfd, DMA_UNMAP, device and region info, SET_IRQS with eventfds, region reads and
// writes, WRITE_MULTI, RESET, FEATURE, migration data, and the server-to-client
// commands), headers included, and random bytes. Each input is one connection: after its
// messages a sentinel GET_INFO is sent (an answer, a close or a stream the input left
// mid-message are all fine); then the connection closes, the server must still answer,
// and once it has torn the client down its fds, mappings of client memory, DMA regions,
// pins and eventfd references are back at the baseline.
import { addon } from '../../../src/addon/addon.js';
import { flags as vfioFlags } from '../../../src/uapi/constants.js';
import {
  encodeCommand, encodeDeviceFeature, encodeDeviceInfoRequest, encodeDmaMap, encodeDmaUnmap, encodeIrqInfoRequest, encodeIrqSet,
  encodeMigDataRead, encodeRegionInfoRequest, encodeRegionIoFdsRequest, encodeRegionRead, encodeRegionWrite, encodeVersion,
  encodeDmaReadRequest, encodeDmaWriteRequest, joinBody, vfioUserCommands as C, vfioUserDmaFlags as DF, type VfioUserBody,
} from '../../../src/uapi/vfio-user/index.js';
import { ServerProcess, type ServerStats } from '../../vfio-user/fixtures/harness.js';
import { RawClient } from '../../vfio-user/fixtures/raw-client.js';
import { clientMemory } from '../../vfio-user/fixtures/suite.js';
import { Rng, fromHex, mutate, toHex } from '../rng.js';
import { FuzzFinding, check, describe, type FuzzTarget } from '../target.js';

type FdRole = 'memfd' | 'eventfd';
interface Message { hex: string; fds: FdRole[] }

export interface VfioUserInput {
  socket: 'simgpu' | 'probe';
  messages: Message[];
}

interface Ctx {
  server: ServerProcess;
  baseline: { fds: number; clientMappings: number };
}

const PAGE = addon().pageSize;
const SENTINEL = 0xfff0;
const CAPS = '{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576}}';
/** How long the server may take to answer and close once the client has ended its side. */
const EXCHANGE_MS = 5_000;
const STATS_MS = 10_000;

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function commands(rng: Rng): { command: number; body: VfioUserBody; fds?: FdRole[] }[] {
  const region = rng.pick([0, 1, 2, 7, 9, 10]);
  const offset = BigInt(rng.pick([0, 4, 8, 0x10, 0x34, 0x40, 0x1000, 0xffc]));
  const address = 0x10_0000n + BigInt(rng.below(4) * PAGE);
  const caps = rng.pick([CAPS, '{}', '{"capabilities":{"max_msg_fds":0,"pgsizes":4096,"max_dma_maps":1,"migration":{"pgsize":4096}}}', '', '{"capabilities":[]}']);
  return [
    { command: C.VFIO_USER_VERSION, body: encodeVersion(rng.pick([0, 1]), rng.below(3), caps) },
    { command: C.VFIO_USER_DMA_MAP, body: encodeDmaMap({ flags: DF.VFIO_USER_F_DMA_REGION_READ | DF.VFIO_USER_F_DMA_REGION_WRITE, offset: 0n, address, size: BigInt(2 * PAGE) }), fds: rng.chance(0.8) ? ['memfd'] : [] },
    { command: C.VFIO_USER_DMA_UNMAP, body: encodeDmaUnmap({ flags: rng.pick([0, 2]), address, size: BigInt(2 * PAGE) }) },
    { command: C.VFIO_USER_DEVICE_GET_INFO, body: encodeDeviceInfoRequest() },
    { command: C.VFIO_USER_DEVICE_GET_REGION_INFO, body: encodeRegionInfoRequest(region, rng.pick([32, 256])) },
    { command: C.VFIO_USER_DEVICE_GET_REGION_IO_FDS, body: encodeRegionIoFdsRequest(region, rng.pick([32, 256])) },
    { command: C.VFIO_USER_DEVICE_GET_IRQ_INFO, body: encodeIrqInfoRequest(rng.below(6)) },
    {
      command: C.VFIO_USER_DEVICE_SET_IRQS,
      body: encodeIrqSet({ flags: vfioFlags.VFIO_IRQ_SET_DATA_EVENTFD | vfioFlags.VFIO_IRQ_SET_ACTION_TRIGGER, index: rng.below(5), start: 0, count: 1 }),
      fds: ['eventfd'],
    },
    { command: C.VFIO_USER_DEVICE_SET_IRQS, body: encodeIrqSet({ flags: vfioFlags.VFIO_IRQ_SET_DATA_NONE | vfioFlags.VFIO_IRQ_SET_ACTION_TRIGGER, index: rng.below(5), start: 0, count: rng.below(2) }) },
    { command: C.VFIO_USER_REGION_READ, body: encodeRegionRead(offset, region, rng.pick([1, 2, 4, 8, 64])) },
    { command: C.VFIO_USER_REGION_WRITE, body: encodeRegionWrite(offset, region, rng.chance(0.5) ? u32(0xffffffff) : rng.bytes(rng.pick([1, 2, 4, 8]))) },
    { command: C.VFIO_USER_REGION_WRITE_MULTI, body: rng.bytes(8 + 24 * rng.below(3)) },
    { command: C.VFIO_USER_DEVICE_RESET, body: new Uint8Array(0) },
    { command: C.VFIO_USER_DEVICE_FEATURE, body: encodeDeviceFeature(rng.pick([1, 2, 4]) << 16 | rng.below(12), rng.bytes(rng.pick([0, 8, 16]))) },
    { command: C.VFIO_USER_MIG_DATA_READ, body: encodeMigDataRead(rng.pick([0, 16, 4096])) },
    { command: C.VFIO_USER_MIG_DATA_WRITE, body: rng.bytes(24) },
    { command: C.VFIO_USER_DMA_READ, body: encodeDmaReadRequest(address, 8) },
    { command: C.VFIO_USER_DMA_WRITE, body: encodeDmaWriteRequest(address, rng.bytes(8)) },
  ];
}

function generate(rng: Rng): VfioUserInput {
  const messages: Message[] = [];
  if (rng.chance(0.9)) messages.push({ hex: toHex(encodeCommand(1, C.VFIO_USER_VERSION, encodeVersion(0, 1, CAPS))), fds: [] });
  for (let n = 1 + rng.below(4); n > 0; n--) {
    const id = 2 + messages.length;
    if (rng.chance(0.85)) {
      const c = rng.pick(commands(rng));
      const body = joinBody(c.body);
      const r = rng.below(10);
      let bytes: Uint8Array;
      if (r < 2) bytes = encodeCommand(id, c.command, body);
      else if (r < 7) bytes = encodeCommand(id, c.command, mutate(rng, body, 4096));
      else bytes = mutate(rng, encodeCommand(id, c.command, body), 4096);
      messages.push({ hex: toHex(bytes), fds: c.fds ?? [] });
    } else {
      messages.push({ hex: toHex(rng.bytes(rng.below(64))), fds: rng.chance(0.2) ? ['eventfd'] : [] });
    }
  }
  return { socket: rng.chance(0.7) ? 'simgpu' : 'probe', messages };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new FuzzFinding(`${what}: no answer in ${ms} ms (a hang)`)), ms); }),
  ]);
}

async function stats(ctx: Ctx): Promise<ServerStats> {
  if (ctx.server.child.exitCode !== null || ctx.server.child.signalCode !== null) {
    throw new FuzzFinding(`the server died (${ctx.server.child.exitCode ?? ctx.server.child.signalCode}): ${ctx.server.stderr.slice(-2000)}`);
  }
  return withTimeout(ctx.server.stats(), STATS_MS, 'the server\'s stats');
}

function settled(s: ServerStats, base: Ctx['baseline']): boolean {
  return s.bus.clients === 0 && s.fds === base.fds && s.clientMappings === base.clientMappings && s.bus.dmaRegions === 0 &&
    s.bus.pinnedPages === 0 && s.bus.eventfdReferences === 0 && Object.values(s.open).every((o) => !o);
}

async function open(): Promise<Ctx> {
  const server = await ServerProcess.start();
  const ctx: Ctx = { server, baseline: { fds: 0, clientMappings: 0 } };
  for (const path of [server.paths.simgpu, server.paths.probe]) {
    const c = RawClient.open(path);
    c.call(C.VFIO_USER_DEVICE_GET_INFO, encodeDeviceInfoRequest());
    c.close();
  }
  await new Promise((r) => setTimeout(r, 50));
  const s = await stats(ctx);
  ctx.baseline = { fds: s.fds, clientMappings: s.clientMappings };
  return ctx;
}

/**
 * Sends the input and the sentinel, then ends the client's side of the stream: the
 * server must answer what it can and close. Returns how the sentinel fared; a server
 * that neither answers nor closes in EXCHANGE_MS is a hang.
 */
function exchange(client: RawClient, input: VfioUserInput): string {
  const a = addon();
  for (const m of input.messages) {
    const fds = m.fds.map((role) => (role === 'memfd' ? clientMemory(4) : a.eventfd(0, 0o2000000 | 0o4000)));
    try {
      client.sendRaw(fromHex(m.hex), fds);
    } catch {
      return 'closed while sending';
    } finally {
      for (const fd of fds) a.close(fd);
    }
  }
  try {
    client.sendRaw(encodeCommand(SENTINEL, C.VFIO_USER_DEVICE_GET_INFO, encodeDeviceInfoRequest()));
    a.shutdown(client.fd, a.constants['SHUT_WR'] ?? 1);
  } catch {
    return 'closed before the sentinel';
  }
  let outcome = 'left mid-message';
  for (const until = Date.now() + EXCHANGE_MS; ;) {
    let m;
    try {
      m = client.next(Math.max(1, until - Date.now()));
    } catch {
      throw new FuzzFinding(`the server neither answered nor closed the connection in ${EXCHANGE_MS} ms after the client ended its side (a hang)`);
    }
    if (!m) return outcome;
    for (const fd of m.fds) a.close(fd);
    if (m.header.msg_id === SENTINEL) outcome = 'answered';
  }
}

export const vfioUserTarget: FuzzTarget<Ctx, VfioUserInput> = {
  name: 'vfio-user',
  covers: 'vfio-user messages to the vGPU server (simgpu and a DMA probe device), in a server process',
  open,
  generate,
  async run(ctx, input) {
    const path = input.socket === 'simgpu' ? ctx.server.paths.simgpu : ctx.server.paths.probe;
    let client: RawClient;
    try {
      client = RawClient.connect(path);
    } catch (err) {
      throw new FuzzFinding(`connect: ${describe(err)} (the last client may not have been let go)`, err);
    }
    try {
      exchange(client, input);
    } finally {
      client.close();
    }
    let s = await stats(ctx);
    for (const until = Date.now() + 3000; !settled(s, ctx.baseline) && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 2));
      s = await stats(ctx);
    }
    check(settled(s, ctx.baseline), () => `after the client left: ${JSON.stringify({ ...s, lastErrors: undefined })}, baseline ${JSON.stringify(ctx.baseline)}`);
  },
  async close(ctx) {
    await ctx.server.stop();
  },
};
