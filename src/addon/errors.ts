// System-call errors as Node shapes them: an Error with `code` ('EINVAL'), `errno`
// (the positive number), `syscall` ('ioctl') and, once a caller knows it, the VFIO
// `operation` ('VFIO_IOMMU_MAP_DMA').
import { constants } from 'node:os';

/** Linux errnos the kernel returns that Node's os.constants.errno does not list. */
const linuxOnlyErrno = { EBADFD: 77, EUSERS: 87 } as const;

export type ErrnoCode = keyof typeof constants.errno | keyof typeof linuxOnlyErrno;

export interface SysError extends Error {
  code: ErrnoCode;
  errno: number;
  syscall: string;
  operation?: string;
}

export function errnoNumber(code: ErrnoCode): number {
  return code in linuxOnlyErrno ? linuxOnlyErrno[code as keyof typeof linuxOnlyErrno] : constants.errno[code as keyof typeof constants.errno];
}

export function errnoCode(errno: number): ErrnoCode | undefined {
  for (const [code, n] of Object.entries({ ...constants.errno, ...linuxOnlyErrno })) if (n === errno) return code as ErrnoCode;
  return undefined;
}

export function sysError(code: ErrnoCode, syscall: string, operation?: string, detail?: string): SysError {
  const what = operation ?? syscall;
  const err = new Error(`${what} failed: ${code}${detail ? ` (${detail})` : ''}`) as SysError;
  err.code = code;
  err.errno = errnoNumber(code);
  err.syscall = syscall;
  if (operation !== undefined) err.operation = operation;
  return err;
}

export function isSysError(err: unknown, code?: ErrnoCode): err is SysError {
  return err instanceof Error && typeof (err as Partial<SysError>).errno === 'number' &&
    typeof (err as Partial<SysError>).code === 'string' && (code === undefined || (err as SysError).code === code);
}

/** Adds the VFIO operation's name to an error thrown by the fd layer, and rethrows. */
export function withOperation(err: unknown, operation: string): never {
  if (isSysError(err) && err.operation === undefined) {
    err.operation = operation;
    err.message = `${operation} failed: ${err.code}`;
  }
  throw err;
}
