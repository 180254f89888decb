// The daemon's protocol lines, over its real socket: a daemon in this process with a
// host on the mock kernel (simgpu0) and a definitions folder, fed mutations of valid
// requests of every method, and random bytes. After each input a sentinel hello must be
// answered (no hang, the connection alive), every line before it answered with a
// well-formed response, and once what the input started or defined is stopped and
// undefined, the mock kernel's accounting is back where it started.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type Daemon } from '../../../src/host/daemon.js';
import { createHost, type Host } from '../../../src/host/host.js';
import { decodeResponseLine } from '../../../src/host/protocol.js';
import { createMockSys, type MockSysLayer } from '../../../src/sys/mock.js';
import { testUuid } from '../../vendors/simgpu-world.js';
import { Rng, fromHex, mutate, mutateJson, toHex } from '../rng.js';
import { FuzzFinding, check, describe, type FuzzTarget } from '../target.js';

export interface ProtocolInput {
  /** Bytes sent before the sentinel; a newline is added when they lack one at the end. */
  hex: string;
}

interface Ctx {
  dir: string;
  sys: MockSysLayer;
  host: Host;
  daemon: Daemon;
  socket: Socket;
  lines: string[];
  partial: string;
  wake: (() => void) | undefined;
  closed: boolean;
  baseline: { fds: number; locked: number; mapped: number };
}

const SENTINEL_ID = 9_007_199_254_740_991;
const TIMEOUT_MS = 10_000;

function requests(rng: Rng): unknown[] {
  const uuid = rng.pick([testUuid(1), testUuid(2), testUuid(3).toUpperCase(), 'not-a-uuid', '']);
  const attrs = [{ name: rng.pick(['a', 'mtty_ports', '__proto__']), value: rng.pick(['1', '', 'x'.repeat(rng.below(3) * 40)]) }];
  const def = { type: rng.pick(['simgpu-0Q', 'simgpu-1Q', 'simgpu-8Q', 'nope']), start: rng.pick(['auto', 'manual']), attrs };
  return [
    { method: 'hello' },
    { method: 'types', params: rng.chance(0.5) ? {} : { parent: 'simgpu0' } },
    { method: 'list', params: { uuid } },
    { method: 'listDefined', params: rng.chance(0.5) ? {} : { parent: 'simgpu0', uuid } },
    { method: 'start', params: { uuid, parent: 'simgpu0', type: def.type } },
    { method: 'start', params: { uuid, parent: 'simgpu0', definition: def } },
    { method: 'stop', params: { uuid } },
    { method: 'define', params: { uuid, parent: 'simgpu0', type: def.type, start: def.start, attrs } },
    { method: 'define', params: { uuid, parent: rng.pick(['simgpu0', '.hidden', 'a/b', 'scripts.d']), definition: def } },
    { method: 'undefine', params: { uuid, parent: 'simgpu0' } },
    { method: 'modify', params: { uuid, start: 'manual', addAttr: { name: 'a', value: '1', index: rng.below(3) }, delAttr: { index: rng.below(3) } } },
    { method: 'info', params: { target: rng.pick([uuid, '0000:00:04.0', 'simgpu0']) } },
    { method: 'screenshot', params: { uuid } },
  ];
}

function generate(rng: Rng): ProtocolInput {
  const lines: string[] = [];
  for (let n = 1 + rng.below(3); n > 0; n--) {
    if (rng.chance(0.85)) {
      const request = { id: rng.below(1000), ...(rng.pick(requests(rng)) as object) };
      const r = rng.below(10);
      const text = JSON.stringify(r < 5 ? mutateJson(rng, request) : request);
      lines.push(r < 7 ? text : Buffer.from(mutate(rng, new Uint8Array(Buffer.from(text)), 2048)).toString('latin1'));
    } else {
      lines.push(Buffer.from(rng.bytes(rng.below(120))).toString('latin1'));
    }
  }
  return { hex: toHex(new Uint8Array(Buffer.from(lines.join('\n'), 'latin1'))) };
}

function accounts(ctx: Ctx): Ctx['baseline'] {
  const k = ctx.sys.kernel;
  return { fds: k.fds.size, locked: k.locked.lockedPages, mapped: k.mm.mappedCount };
}

async function open(): Promise<Ctx> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-fuzz-daemon-'));
  const sys = createMockSys({ devices: [] });
  const host = createHost({ sys, definitionsRoot: join(dir, 'defs'), simulated: true, report: () => undefined });
  const daemon = await serve(host, { socketPath: join(dir, 'vgpu.sock'), handleSignals: false, log: () => undefined, definitionsRoot: join(dir, 'defs') });
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(join(dir, 'vgpu.sock'));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  const ctx: Ctx = { dir, sys, host, daemon, socket, lines: [], partial: '', wake: undefined, closed: false, baseline: { fds: 0, locked: 0, mapped: 0 } };
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    const parts = (ctx.partial + text).split('\n');
    ctx.partial = parts.pop()!;
    ctx.lines.push(...parts);
    ctx.wake?.();
  });
  socket.on('close', () => { ctx.closed = true; ctx.wake?.(); });
  socket.on('error', () => undefined);
  ctx.baseline = accounts(ctx);
  return ctx;
}

/** Lines up to and including the sentinel's answer. */
async function untilSentinel(ctx: Ctx): Promise<string[]> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const at = ctx.lines.findIndex((l) => l.startsWith(`{"id":${SENTINEL_ID},`));
    if (at !== -1) return ctx.lines.splice(0, at + 1);
    if (ctx.closed) throw new FuzzFinding(`the daemon closed the connection (${ctx.lines.length} lines came)`);
    if (Date.now() > deadline) throw new FuzzFinding(`no answer to the sentinel hello in ${TIMEOUT_MS} ms (a hang)`);
    await new Promise<void>((resolve) => { ctx.wake = resolve; setTimeout(resolve, 100); });
    ctx.wake = undefined;
  }
}

export const protocolTarget: FuzzTarget<Ctx, ProtocolInput> = {
  name: 'protocol',
  covers: 'daemon protocol lines over the management socket (a daemon with a mock-kernel host)',
  open,
  generate,
  async run(ctx, input) {
    let text = Buffer.from(fromHex(input.hex)).toString('latin1');
    if (!text.endsWith('\n')) text += '\n';
    ctx.socket.write(Buffer.from(text, 'latin1'));
    ctx.socket.write(`${JSON.stringify({ id: SENTINEL_ID, method: 'hello' })}\n`);
    const answers = await untilSentinel(ctx);
    for (const line of answers) {
      try {
        decodeResponseLine(line);
      } catch (err) {
        throw new FuzzFinding(`a malformed answer ${JSON.stringify(line.slice(0, 200))}: ${describe(err)}`, err);
      }
    }
    // Undo what the input did, through the host, and check the kernel's books.
    try {
      for (const d of await ctx.host.list()) await ctx.host.stop(d.uuid);
      for (const d of await ctx.host.listDefined()) await ctx.host.undefine(d.uuid, d.parent);
    } catch (err) {
      throw new FuzzFinding(`cleaning up after the input: ${describe(err)}`, err);
    }
    const now = accounts(ctx);
    check(JSON.stringify(now) === JSON.stringify(ctx.baseline), () => `accounting ${JSON.stringify(now)} with nothing live, ${JSON.stringify(ctx.baseline)} at the start`);
    const stats = ctx.daemon.stats();
    check(stats.connections === 1 && stats.unsentBytes === 0, () => `daemon stats ${JSON.stringify(stats)} with one idle client`);
  },
  async close(ctx) {
    ctx.socket.destroy();
    await ctx.daemon.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  },
};
