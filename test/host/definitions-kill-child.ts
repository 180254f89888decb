// Child of definitions-kill.test.ts: saves definitions in a loop until it is killed.
// argv: <root> <first round>. Each round rewrites every device with its round number and
// a padding whose every character is derived from the round, so a torn file shows; one
// device is removed and saved again in turn. Prints "ready" once the first round is on disk.
import { DefinitionStore } from '../../src/host/definitions.js';
import { KILL_DEVICES, KILL_TOGGLED, killRoundAttrs } from './definitions-kill-shape.js';

const [root, first] = process.argv.slice(2);
const store = new DefinitionStore(root);
for (let round = Number(first); ; round++) {
  for (const uuid of KILL_DEVICES) store.save({ uuid, parent: 'simgpu0', type: 'simgpu-4Q', start: round % 2 ? 'auto' : 'manual', attrs: killRoundAttrs(round) });
  if (round % 2) store.remove('simgpu0', KILL_TOGGLED);
  else store.save({ uuid: KILL_TOGGLED, parent: 'simgpu0', type: 'simgpu-1Q', start: 'manual', attrs: killRoundAttrs(round) });
  if (round === Number(first)) process.stdout.write('ready\n');
}
