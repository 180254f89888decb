// `vgpu` as scripts and libvirt call it: one whole process per command, against `node -e 0`
// (the floor any node command pays). Measured in alternating rounds, each round running
// every command once, so a busy machine slows all of them alike; each figure is min /
// median / max over the rounds, and the ratio is of the medians. Target: <= 1.3x node.
//
// Without a daemon: `list -d` over a root with two definitions, `define -p -t` into a
// root of its own (a parent this host has, so the type is checked), `modify -t` of one
// of the two (the type checked too), and `undefine` of a definition seeded for each round.
// Through a daemon (`vgpu serve` started here, on the mock kernel): `list` and `types`.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { reportSpread, spread, title } from './report.js';

const ROUNDS = 21;
const vgpu = fileURLToPath(new URL('../src/cli/vgpu.js', import.meta.url));

interface Command {
  name: string;
  /** The same every round, or each round's own (a definition to undefine). */
  args: string[] | ((round: number) => string[]);
  env?: NodeJS.ProcessEnv;
}

/** Milliseconds for one whole process; a failing command fails the bench. */
function timeProcess(command: Command, round = 0): number {
  const args = typeof command.args === 'function' ? command.args(round) : command.args;
  const start = performance.now();
  const result = spawnSync(process.execPath, args, { env: { ...process.env, ...command.env }, encoding: 'utf8' });
  const ms = performance.now() - start;
  if (result.status !== 0) throw new Error(`${command.name} exited ${result.status}: ${result.stderr.trim()}`);
  return ms;
}

/** Starts `vgpu serve`; resolves once it says ready. */
function startDaemon(socket: string, root: string): Promise<() => void> {
  const child = spawn(process.execPath, [vgpu, 'serve', '--socket', socket, '--root', root], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VGPU_SYS: 'mock' },
  });
  return new Promise((resolve, reject) => {
    let said = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      said += text;
      if (said.includes('ready:')) resolve(() => child.kill('SIGTERM'));
    });
    child.on('exit', (code) => reject(new Error(`vgpu serve exited ${code}: ${said.trim()}`)));
  });
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-vgpu-cli-start-'));
  const listRoot = join(dir, 'defs');
  const defineRoot = join(dir, 'defined');
  const socket = join(dir, 'vgpu.sock');
  // No daemon for the definition verbs: a socket nobody listens on.
  const alone = { VGPU_SOCKET: join(dir, 'none.sock'), VGPU_SYS: 'mock' };
  const undefineRoot = join(dir, 'undefined');
  const listed = [randomUUID(), randomUUID()];
  const seeded = Array.from({ length: ROUNDS }, () => randomUUID());
  const seed = (root: string, uuid: string): number => timeProcess({ name: 'seed', args: [vgpu, '--root', root, 'define', '-u', uuid, '-p', 'simgpu0', '-t', 'simgpu-1Q'], env: alone });
  for (const uuid of listed) seed(listRoot, uuid);
  for (const uuid of seeded) seed(undefineRoot, uuid);
  const stop = await startDaemon(socket, join(dir, 'daemon-defs'));
  try {
    const baseline: Command = { name: 'node -e 0', args: ['-e', '0'] };
    const commands: Command[] = [
      { name: 'vgpu list -d (no daemon)', args: [vgpu, '--root', listRoot, 'list', '-d'], env: alone },
      { name: 'vgpu define -p -t (no daemon)', args: [vgpu, '--root', defineRoot, 'define', '-p', 'simgpu0', '-t', 'simgpu-1Q'], env: alone },
      { name: 'vgpu modify -t (no daemon)', args: (round) => [vgpu, '--root', listRoot, 'modify', '-u', listed[0]!, '-t', round % 2 === 0 ? 'simgpu-2Q' : 'simgpu-1Q'], env: alone },
      { name: 'vgpu undefine (no daemon)', args: (round) => [vgpu, '--root', undefineRoot, 'undefine', '-u', seeded[round]!], env: alone },
      { name: 'vgpu list (daemon)', args: [vgpu, 'list'], env: { VGPU_SOCKET: socket } },
      { name: 'vgpu types (daemon)', args: [vgpu, 'types'], env: { VGPU_SOCKET: socket } },
    ];
    const times = [baseline, ...commands].map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      [baseline, ...commands].forEach((command, i) => times[i]!.push(timeProcess(command, round)));
    }
    const base = spread(times[0]!);
    title(`cli start: whole processes, ${ROUNDS} alternating rounds (ms: median, ratio of medians, min..max)`);
    reportSpread(baseline.name, base, 'ms');
    commands.forEach((command, i) => reportSpread(command.name, spread(times[i + 1]!), 'ms', 'node -e 0', base));
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
