// A process saving definitions is SIGKILLed at random moments, many times: after each
// kill every file holds a whole definition (the old one or the new one, never older than
// what was seen before), load() reports no error, and the dead writer's temporary files
// are cleared. Bounded to a few seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefinitionStore } from '../../src/host/definitions.js';
import { isTempName } from '../../src/host/atomic-write.js';
import { KILL_DEVICES, KILL_TOGGLED, killRoundAttrs } from './definitions-kill-shape.js';

const CHILD = fileURLToPath(new URL('./definitions-kill-child.js', import.meta.url));
const BUDGET_MS = 7000;
const MAX_ROUNDS = 30;

/** Starts the writer, waits for its first round on disk, lets it run `delayMs`, kills it. */
function runAndKill(root: string, first: number, delayMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, root, String(first)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.once('data', () => {
      setTimeout(() => { killed = child.kill('SIGKILL'); }, delayMs);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (killed && signal === 'SIGKILL') resolve();
      else reject(new Error(`writer exited before the kill: code ${code} signal ${signal}: ${stderr.trim()}`));
    });
  });
}

test('SIGKILL at random moments while saving: every file whole, old or new; no errors; no leftovers', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vgpu-kill-'));
  const store = new DefinitionStore(root);
  const dir = join(root, 'simgpu0');
  const seen = new Map<string, number>();
  let first = 0;
  let rounds = 0;
  let leftovers = 0;
  const started = Date.now();
  try {
    while (rounds < MAX_ROUNDS && Date.now() - started < BUDGET_MS) {
      await runAndKill(root, first, Math.floor(Math.random() * 25));
      rounds++;
      leftovers += readdirSync(dir).filter(isTempName).length;
      const { definitions, errors } = store.load();
      assert.deepEqual(errors, [], `round ${rounds}`);
      assert.deepEqual(readdirSync(dir).filter(isTempName), [], 'load clears a dead writer\'s temporary files');
      const uuids = definitions.map((d) => d.uuid);
      for (const uuid of KILL_DEVICES) assert.ok(uuids.includes(uuid), `${uuid} is never missing: saves replace it whole`);
      let max = first;
      for (const d of definitions) {
        assert.equal(d.parent, 'simgpu0');
        assert.ok(d.uuid === KILL_TOGGLED || KILL_DEVICES.includes(d.uuid), d.uuid);
        const round = Number(d.attrs[0]?.value);
        assert.ok(Number.isInteger(round) && round >= (seen.get(d.uuid) ?? 0), `${d.uuid}: round ${d.attrs[0]?.value} after ${seen.get(d.uuid)}`);
        // The whole content of that round, not a mix.
        assert.deepEqual(d.attrs, killRoundAttrs(round));
        if (d.uuid === KILL_TOGGLED) {
          assert.equal(round % 2, 0, 'the toggled device is only saved on even rounds');
          assert.equal(d.type, 'simgpu-1Q');
        } else {
          assert.equal(d.start, round % 2 ? 'auto' : 'manual');
        }
        seen.set(d.uuid, round);
        max = Math.max(max, round);
      }
      first = max + 1;
    }
    assert.ok(rounds >= 5, `only ${rounds} rounds in ${BUDGET_MS} ms`);
    t.diagnostic(`${rounds} kills, ${first} rounds written, ${leftovers} temporary files left by a killed writer`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
