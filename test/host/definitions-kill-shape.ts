// What definitions-kill-child.ts writes, shared with the test that checks it.
import type { DefinitionAttr } from '../../src/host/api.js';

export const KILL_DEVICES = [
  '0a000000-0000-4000-8000-000000000001',
  '0b000000-0000-4000-8000-000000000002',
  '0c000000-0000-4000-8000-000000000003',
];
/** Removed on odd rounds, saved on even ones (under simgpu0, beside the others). */
export const KILL_TOGGLED = '0d000000-0000-4000-8000-000000000004';

/** 60 KiB of padding: a write takes long enough to be cut, and the file stays under
 * the 64 KiB a definition may be (definition-file.ts). */
const PAD = 60 * 1024;

export function killRoundAttrs(round: number): DefinitionAttr[] {
  const c = String.fromCharCode(0x61 + (round % 26));
  return [{ name: 'round', value: String(round) }, { name: 'pad', value: c.repeat(PAD) + String(round) }];
}
