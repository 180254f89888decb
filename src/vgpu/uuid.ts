// UUIDs name vGPUs, as they name mdev devices: the kernel's guid_parse() rules for
// input (8-4-4-4-12 hex digits of either case, any version) and its "%pUl" form for
// output (lower case), so "ABC..." and "abc..." are the same vGPU.

/** Characters in a UUID's text form (the kernel's UUID_STRING_LEN). */
export const UUID_STRING_LEN = 36;

const HEX = /^[0-9a-fA-F]$/;

/** True for 36 characters with hyphens at 8, 13, 18, 23 and hex digits elsewhere. */
export function isUuid(text: string): boolean {
  if (typeof text !== 'string' || text.length !== UUID_STRING_LEN) return false;
  for (let i = 0; i < UUID_STRING_LEN; i++) {
    const c = text[i]!;
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== '-') return false;
    } else if (!HEX.test(c)) {
      return false;
    }
  }
  return true;
}

/** The canonical (lower-case) form of a UUID, or undefined when `text` is not one. */
export function parseUuid(text: string): string | undefined {
  return isUuid(text) ? text.toLowerCase() : undefined;
}

/**
 * A new random (version 4) UUID in canonical form, from the global Web Crypto object (the
 * same generator as node:crypto's): importing node:crypto would load it for every command
 * that imports this file, a global loads it on the first call.
 */
export function generateUuid(): string {
  return globalThis.crypto.randomUUID();
}
