// Shared bits of the vfio client tests: the mock kernel with its simulated edu, and
// an fd count to prove that nothing leaks.
import { readdirSync } from 'node:fs';
import { createMockSys } from '../../src/sys/mock.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import type { SysLayer } from '../../src/sys/types.js';

export const EDU = '0000:00:04.0';

/** A fresh mock kernel (6.1 unless asked) with the simulated edu at 0000:00:04.0. */
export function mockSys(kernel: '6.1' | '6.12' = '6.1'): SysLayer {
  return createMockSys({ kernel, devices: [createEduDevice(EDU)] });
}

/** Open fds of this process, as /proc/self/fd lists them. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** What an ioctl failure must look like: the errno, and the ioctl's name as operation. */
export function ioctlError(code: string, errno: number, operation: string): object {
  return { code, errno, syscall: 'ioctl', operation };
}
