// mdevctl's --jsonfile: a definition's JSON read from a file (libvirt passes /dev/stdin).
import { readFileSync } from 'node:fs';
import { isSysError, sysError, type ErrnoCode } from '../../sys/errors.js';
import { mdevctlJson, type JsonDefinition } from '../host-link.js';

export async function readJsonFile(path: string): Promise<JsonDefinition> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (isSysError(err) ? err.code : 'EIO') as ErrnoCode;
    const failure = sysError(code, 'open');
    failure.message = `cannot read --jsonfile ${path}: ${code}`;
    throw failure;
  }
  return (await mdevctlJson()).parseDefinition(text, path);
}
