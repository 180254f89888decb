// mdevctl's --jsonfile: a definition's JSON read from a file (libvirt passes /dev/stdin).
import { readFileSync } from 'node:fs';
import { sysError, type ErrnoCode } from '../../sys/errors.js';
import { parseDefinitionText, type DefinitionBody } from '../host-link.js';

export function readJsonFile(path: string): DefinitionBody {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
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
