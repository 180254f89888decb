// The fd layer's front door: picks the real kernel (the addon over /dev/vfio) or the
// mock kernel, and re-exports what the upper layers use from src/sys.
import { existsSync } from 'node:fs';
import { createMockSys, type MockSysOptions } from './mock.js';
import { createNativeSys } from './native.js';
import type { SysKind, SysLayer } from './types.js';

export * from './types.js';
export * from '../addon/errors.js';
export { createMockSys, MockKernel } from './mock.js';
export type { KernelFlavour, MockKernelOptions, MockPciDeviceEntry, MockSysLayer, MockSysOptions } from './mock.js';
export { createNativeSys } from './native.js';

export interface OpenSysOptions {
  /** Which fd layer; default: $VGPU_SYS, else native when /dev/vfio/vfio exists, else mock. */
  kind?: SysKind;
  /** Options for the mock kernel, when it is the one chosen. */
  mock?: MockSysOptions;
}

/** The fd layer this process should use. */
export function openSys(options: OpenSysOptions = {}): SysLayer {
  const kind = options.kind ?? sysKindFromEnv() ?? (existsSync('/dev/vfio/vfio') ? 'native' : 'mock');
  return kind === 'native' ? createNativeSys() : createMockSys(options.mock);
}

function sysKindFromEnv(): SysKind | undefined {
  const value = process.env['VGPU_SYS'];
  if (value === undefined || value === '') return undefined;
  if (value === 'native' || value === 'mock') return value;
  throw new Error(`VGPU_SYS must be "native" or "mock", not ${JSON.stringify(value)}`);
}
