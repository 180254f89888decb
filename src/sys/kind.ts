// Which fd layer a process uses, decided without loading either (the CLI's definition
// verbs ask, and only the mock's parents are known without making them).
import { existsSync } from 'node:fs';
import type { SysKind } from './types.js';

/** `kind` when given, else $VGPU_SYS, else native when /dev/vfio/vfio exists, else mock. */
export function chooseSysKind(kind?: SysKind): SysKind {
  return kind ?? sysKindFromEnv() ?? (existsSync('/dev/vfio/vfio') ? 'native' : 'mock');
}

function sysKindFromEnv(): SysKind | undefined {
  const value = process.env['VGPU_SYS'];
  if (value === undefined || value === '') return undefined;
  if (value === 'native' || value === 'mock') return value;
  throw new Error(`VGPU_SYS must be "native" or "mock", not ${JSON.stringify(value)}`);
}
