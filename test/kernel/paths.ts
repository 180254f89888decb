// Where the harness reads the project from and keeps its cache. The harness runs from
// dist/test/kernel/, three levels below the repository root.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Git-ignored: downloaded packages, extracted kernels, image layers, logs, parity tables. */
export const cacheDir = join(repoRoot, '.cache', 'kernel');

/** Where the project lives inside the guest. */
export const guestProjectDir = '/vgpu';

/** The edu device's address in the guest: QEMU puts it there with `addr=04.0`. */
export const guestDevice = '0000:00:04.0';
export const eduVendorDevice = '1234 11e8';
