// Migration data: MIG_DATA_READ and MIG_DATA_WRITE (client to server), a stream in
// place of the kernel's data_fd. QEMU 11.1's vfio-user-pci never migrates its device and
// sends neither (see feature.ts).
import type { VfioUserBody } from './header.js';
import { defineStruct, type StructValue } from '../struct.js';
import { expectLength } from './invalid.js';

/**
 * MIG_DATA_READ request (8 bytes); MIG_DATA_READ reply and MIG_DATA_WRITE request
 * (8 bytes, then `size` bytes of data). MIG_DATA_WRITE's reply has no body.
 *   0 u32 argsz   request: the reply size accepted; reply: 8 + size
 *   4 u32 size    bytes asked for or carried (a short read means no more data)
 *   8 data
 */
export const vfio_user_mig_data = defineStruct('vfio_user_mig_data', 8, { argsz: ['u32', 0], size: ['u32', 4] });

export type MigDataHead = StructValue<typeof vfio_user_mig_data.fields>;

export interface MigData extends MigDataHead {
  /** A subarray of the body: no copy. */
  data: Uint8Array;
}

export function encodeMigDataRead(size: number, argsz = vfio_user_mig_data.size + size): Uint8Array {
  return vfio_user_mig_data.encode({ argsz, size });
}

export function decodeMigDataRead(body: Uint8Array): MigDataHead {
  expectLength(body, vfio_user_mig_data.size, 'VFIO_USER_MIG_DATA_READ');
  return vfio_user_mig_data.decode(body);
}

/** MIG_DATA_READ reply and MIG_DATA_WRITE request. */
export function encodeMigData(data: Uint8Array, argsz = vfio_user_mig_data.size + data.byteLength): VfioUserBody {
  return [vfio_user_mig_data.encode({ argsz, size: data.byteLength }), data];
}

export function decodeMigData(body: Uint8Array): MigData {
  expectLength(body, vfio_user_mig_data.size, 'VFIO_USER_MIG_DATA', true);
  const head = vfio_user_mig_data.decode(body);
  expectLength(body, vfio_user_mig_data.size + head.size, 'VFIO_USER_MIG_DATA with data');
  return { ...head, data: body.subarray(vfio_user_mig_data.size) };
}
