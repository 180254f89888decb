// The fd layer's front door: picks the real kernel (the addon over /dev/vfio) or the
// mock kernel, and re-exports what the upper layers use from src/sys.
import { createMockSys, type MockSysOptions } from './mock.js';
import { chooseSysKind } from './kind.js';
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
  const kind = chooseSysKind(options.kind);
  return kind === 'native' ? createNativeSys() : createMockSys(options.mock);
}
