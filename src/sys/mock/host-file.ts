// Real fds the mock layer opened for real: eventfds, and files outside /dev/vfio
// (/dev/null, a memfd...). Every operation on them is the real system call.
import { addon } from '../../addon/addon.js';
import { mappingFromBuffer } from '../../device/memory.js';
import type { Mapping } from '../types.js';
import type { MockFile, MockFileKind } from './fd-table.js';

export class HostFile implements MockFile {
  constructor(readonly fd: number, readonly kind: MockFileKind & ('eventfd' | 'host')) {}

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    return addon().ioctl(this.fd, request, arg);
  }

  pread(buf: Uint8Array, offset: bigint): number {
    return addon().pread(this.fd, buf, offset);
  }

  pwrite(buf: Uint8Array, offset: bigint): number {
    return addon().pwrite(this.fd, buf, offset);
  }

  mmap(offset: bigint, length: number, prot: number): Mapping {
    const a = addon();
    return mappingFromBuffer(a.mmap(this.fd, offset, length, prot, a.constants['MAP_SHARED'] ?? 1), prot);
  }

  release(): void {
    // The fd table closes the real fd.
  }
}
