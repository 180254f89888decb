// How the kernel's mdev sysfs files read what is written to them: `create` takes a
// UUID through guid_parse(), `remove` a number through kstrtoul(buf, 0). Written as
// the kernel behaves, including its quirks (noted where they surprise).
import { parseUuid, UUID_STRING_LEN } from '../uuid.js';

/**
 * The UUID a write to `create` names, or undefined for EINVAL. The write must be 36 or
 * 37 bytes (a UUID and, usually, a newline); guid_parse() then checks the first 36
 * characters only, so the 37th byte may be anything (the kernel accepts "<uuid>x").
 */
export function parseCreateInput(value: string): string | undefined {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length < UUID_STRING_LEN || bytes.length > UUID_STRING_LEN + 1) return undefined;
  // Bytes beyond ASCII decode to characters that are not hex digits: EINVAL, as in C.
  return parseUuid(bytes.toString('latin1', 0, UUID_STRING_LEN));
}

const ULONG_MAX = (1n << 64n) - 1n;

function digitValue(c: string | undefined): number | undefined {
  if (c === undefined) return undefined;
  if (c >= '0' && c <= '9') return c.charCodeAt(0) - 48;
  const lower = c.toLowerCase();
  if (lower >= 'a' && lower <= 'f' && lower.length === 1) return lower.charCodeAt(0) - 87;
  return undefined;
}

/**
 * kstrtoul(s, 0): an optional "+", then "0x"/"0X" and hex digits, "0" and octal digits,
 * or decimal digits; one trailing newline is allowed and nothing else. Returns
 * undefined where the kernel fails (EINVAL, or ERANGE above 2^64 - 1). The string ends
 * at a NUL byte, as the kernel's NUL-terminated buffer does.
 */
export function kstrtoul(value: string): bigint | undefined {
  const nul = value.indexOf('\0');
  const s = nul >= 0 ? value.slice(0, nul) : value;
  let i = s[0] === '+' ? 1 : 0;
  let base = 10;
  if (s[i] === '0') {
    if ((s[i + 1] === 'x' || s[i + 1] === 'X') && digitValue(s[i + 2]) !== undefined) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  let result = 0n;
  let digits = 0;
  for (; i < s.length; i++) {
    const d = digitValue(s[i]);
    if (d === undefined || d >= base) break;
    result = result * BigInt(base) + BigInt(d);
    digits++;
  }
  if (digits === 0 || result > ULONG_MAX) return undefined;
  if (s[i] === '\n') i++;
  return i === s.length ? result : undefined;
}
