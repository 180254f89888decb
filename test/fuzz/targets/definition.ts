// Definition files (mdevctl's JSON): mutations of valid definitions and random bytes,
// parsed as text and read from a file in a definitions folder. Invariants: a refusal is
// an EINVAL naming a position, never the file's bytes; what parses writes back to a
// text that parses to the same definition; the folder's reader agrees with the parser.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSysError } from '../../../src/addon/errors.js';
import { MAX_DEFINITION_BYTES } from '../../../src/host/definition-file.js';
import { DefinitionStore } from '../../../src/host/definitions.js';
import { definitionFileText, parseDefinitionText, type DefinitionBody } from '../../../src/host/mdevctl-json.js';
import { testUuid } from '../../vendors/simgpu-world.js';
import { Rng, fromHex, mutate, mutateJson, toHex } from '../rng.js';
import { FuzzFinding, check, describe, type FuzzTarget } from '../target.js';

export interface DefinitionInput {
  hex: string;
}

interface Ctx {
  root: string;
  store: DefinitionStore;
  file: string;
}

const UUID = testUuid(0xdef);
const VALID = [
  '{\n  "mdev_type": "simgpu-1Q",\n  "start": "auto",\n  "attrs": []\n}',
  '{\n  "mdev_type": "mtty-2",\n  "start": "manual",\n  "attrs": [\n    {\n      "mtty_ports": "2"\n    },\n    {\n      "x": ""\n    }\n  ]\n}',
  '{"mdev_type":"i915-GVTg_V5_4","start":"manual","attrs":null,"extra":{"k":[1,2.5e3,true,null]}}',
  '{"start":"auto","mdev_type":"nvidia-63","attrs":[{"__proto__":"1"},{"constructor":"2"}]}',
];

function generate(rng: Rng): DefinitionInput {
  if (rng.chance(0.4)) {
    const text = JSON.stringify(mutateJson(rng, JSON.parse(rng.pick(VALID))), null, rng.chance(0.5) ? 2 : undefined);
    return { hex: toHex(new Uint8Array(Buffer.from(text ?? 'undefined', 'utf8'))) };
  }
  if (rng.chance(0.75)) {
    const base = new Uint8Array(Buffer.from(rng.pick(VALID), 'utf8'));
    return { hex: toHex(mutate(rng, base, 2048)) };
  }
  return { hex: toHex(rng.bytes(rng.below(200))) };
}

/** The parser's verdict: a body, or the message of its EINVAL. */
function verdict(text: string): DefinitionBody | string {
  try {
    return parseDefinitionText(text);
  } catch (err) {
    if (!isSysError(err, 'EINVAL')) throw new FuzzFinding(`parseDefinitionText threw ${describe(err)}`, err);
    return err.message;
  }
}

/** A run of 16 characters of the text in a message: the file's bytes echoed. */
function echoes(message: string, text: string): string | undefined {
  const plain = text.replace(/\s+/g, ' ');
  for (let i = 0; i + 16 <= plain.length; i += 4) {
    const piece = plain.slice(i, i + 16);
    if (/^[\w" :{},[\]-]*$/.test(piece) && /"(mdev_type|start|attrs)"/.test(piece)) continue; // key names are ours to say
    if (message.includes(piece)) return piece;
  }
  return undefined;
}

export const definitionTarget: FuzzTarget<Ctx, DefinitionInput> = {
  name: 'definition',
  covers: 'definition files: parsed as text and read from a definitions folder',
  open() {
    const root = mkdtempSync(join(tmpdir(), 'vgpu-fuzz-defs-'));
    mkdirSync(join(root, 'simgpu0'));
    return { root, store: new DefinitionStore(root), file: join(root, 'simgpu0', UUID) };
  },
  generate,
  run(ctx, input) {
    const bytes = fromHex(input.hex);
    const text = new TextDecoder().decode(bytes);
    const parsed = verdict(text);
    if (typeof parsed === 'string') {
      if (parsed.startsWith('not valid JSON')) {
        const piece = echoes(parsed, text);
        check(piece === undefined, () => `a JSON error echoes the file's bytes ${JSON.stringify(piece)}: ${parsed}`);
      }
    } else {
      const again = verdict(definitionFileText(parsed));
      check(JSON.stringify(again) === JSON.stringify(parsed), () => `written back and read again: ${JSON.stringify(again)}, first ${JSON.stringify(parsed)}`);
    }
    writeFileSync(ctx.file, bytes);
    let loaded;
    try {
      loaded = ctx.store.load();
    } catch (err) {
      throw new FuzzFinding(`DefinitionStore.load threw ${describe(err)}`, err);
    }
    if (bytes.byteLength > MAX_DEFINITION_BYTES) {
      check(loaded.definitions.length === 0 && loaded.errors.length === 1 && loaded.errors[0]!.message.includes('limit'),
        () => `a ${bytes.byteLength}-byte file (over the cap) read as ${JSON.stringify(loaded).slice(0, 300)}`);
    } else if (typeof parsed === 'string') {
      check(loaded.definitions.length === 0 && loaded.errors.length === 1, () => `the folder read ${loaded.definitions.length} definitions and ${loaded.errors.length} errors from a file the parser refuses`);
    } else {
      const d = loaded.definitions[0];
      check(loaded.errors.length === 0 && d !== undefined && d.type === parsed.type && d.start === parsed.start &&
        JSON.stringify(d.attrs) === JSON.stringify(parsed.attrs), () => `the folder read ${JSON.stringify(loaded)}, the parser ${JSON.stringify(parsed)}`);
    }
  },
  close(ctx) {
    rmSync(ctx.root, { recursive: true, force: true });
  },
};
