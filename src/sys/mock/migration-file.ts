// A migration data fd (the anon-inode file a driver's migration_set_state returns,
// installed by the VFIO core): a stream, so pread/pwrite and mmap are refused as the
// kernel refuses them on such a file (ESPIPE, ENODEV); a saving file is opened
// read-only (write(2) EBADF) and answers VFIO_MIG_GET_PRECOPY_INFO, a resuming file is
// write-only (read(2) EBADF) with no ioctl at all (ENOTTY).
import { sysError } from '../../addon/errors.js';
import type { MigrationDataChannel } from '../../device/migration/ops.js';
import { VFIO_MIG_GET_PRECOPY_INFO, vfio_precopy_info } from '../../uapi/migration.js';
import type { Mapping } from '../types.js';
import type { MockFile } from './fd-table.js';
import { requireUserBytes, userPointer } from './user-args.js';

const OP = 'VFIO_MIG_GET_PRECOPY_INFO';

export class MigrationFile implements MockFile {
  readonly kind = 'migration';

  constructor(private readonly channel: MigrationDataChannel) {}

  read(buf: Uint8Array): number {
    if (this.channel.direction !== 'save') throw sysError('EBADF', 'read', undefined, 'a resuming data fd is write-only');
    return this.channel.read(buf);
  }

  write(buf: Uint8Array): number {
    if (this.channel.direction !== 'resume') throw sysError('EBADF', 'write', undefined, 'a saving data fd is read-only');
    return this.channel.write(buf);
  }

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    if (this.channel.direction !== 'save' || request !== VFIO_MIG_GET_PRECOPY_INFO) {
      throw sysError('ENOTTY', 'ioctl', undefined, `data fd ioctl 0x${request.toString(16)}`);
    }
    const buf = userPointer(arg, OP);
    // minsz is offsetofend(dirty_bytes): the whole struct.
    requireUserBytes(buf, 0, vfio_precopy_info.size, OP);
    const { argsz } = vfio_precopy_info.decode(buf);
    if (argsz < vfio_precopy_info.size) throw sysError('EINVAL', 'ioctl', OP, `argsz ${argsz}`);
    const info = this.channel.precopyInfo();
    vfio_precopy_info.write(buf, { initial_bytes: info.initialBytes, dirty_bytes: info.dirtyBytes });
    return 0;
  }

  pread(): number {
    throw sysError('ESPIPE', 'pread', undefined, 'a migration data fd is a stream');
  }

  pwrite(): number {
    throw sysError('ESPIPE', 'pwrite', undefined, 'a migration data fd is a stream');
  }

  mmap(): Mapping {
    throw sysError('ENODEV', 'mmap', undefined, 'a migration data fd cannot be mapped');
  }

  release(): void {
    this.channel.release();
  }
}
