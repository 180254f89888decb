// mdevctl's --jsonfile: a definition's JSON read from a file (libvirt passes /dev/stdin).
import { readFileSync } from 'node:fs';
import { sysError, type ErrnoCode } from '../../addon/errors.js';
import { parseDefinitionText, type DefinitionBody } from '../../host/mdevctl-json.js';

export function readJsonFile(path: string): DefinitionBody {
  let text: string;
  try {
    // /dev/stdin cannot be opened when stdin is a socket (ENXIO): read fd 0 itself.
    text = readFileSync(path === '/dev/stdin' ? 0 : path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    const failure = sysError(code as ErrnoCode, 'open');
    failure.message = `cannot read --jsonfile ${path}: ${code}`;
    throw failure;
  }
  try {
    return parseDefinitionText(text);
  } catch (err) {
    if (err instanceof Error) err.message = `--jsonfile ${path}: ${err.message}`;
    throw err;
  }
}
