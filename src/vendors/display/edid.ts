// A monitor for the display vGPU: an EDID 1.4 base block (VESA E-EDID) describing a
// digital panel whose preferred mode is the type's largest (a detailed timing at 60 Hz
// with reduced blanking), the VESA established modes that fit, a range-limits
// descriptor and the product name. Built from the published layout, byte by byte.

export const EDID_BLOCK_SIZE = 128;
/** The product name shown in the name descriptor (at most 13 characters). */
export const EDID_PRODUCT_NAME = 'vfio-vgpu';

const HEADER = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
/** Three letters packed 5 bits each, 'A' = 1 (a PNP-style id of our own). */
const MANUFACTURER = 'VFV';
const DPI = 96;
const REFRESH = 60;

export interface EdidOptions {
  /** The preferred (and largest) mode. */
  width: number;
  height: number;
  /** Product code and serial number. */
  product?: number;
  serial?: number;
}

/** The modes the established-timings bytes can announce, with their byte and bit. */
const ESTABLISHED: readonly { width: number; height: number; byte: number; bit: number }[] = [
  { width: 640, height: 480, byte: 35, bit: 5 }, // 640x480 @ 60 Hz
  { width: 800, height: 600, byte: 35, bit: 0 }, // 800x600 @ 60 Hz
  { width: 1024, height: 768, byte: 36, bit: 3 }, // 1024x768 @ 60 Hz
];

/** The preferred mode's timing: CVT reduced-blanking-like figures at 60 Hz. */
export interface DetailedTiming {
  pixelClock10kHz: number;
  hActive: number;
  hBlank: number;
  hFront: number;
  hSync: number;
  vActive: number;
  vBlank: number;
  vFront: number;
  vSync: number;
}

export function timingFor(width: number, height: number): DetailedTiming {
  const hBlank = 160;
  const vFront = 3;
  const vSync = 6;
  // At least 460 us of vertical blanking, as reduced blanking asks.
  const linePeriodUs = (1e6 / REFRESH - 460) / height;
  const vBlank = Math.max(Math.ceil(460 / linePeriodUs), vFront + vSync + 6);
  const pixelClock10kHz = Math.round(((width + hBlank) * (height + vBlank) * REFRESH) / 10_000);
  return { pixelClock10kHz, hActive: width, hBlank, hFront: 48, hSync: 32, vActive: height, vBlank, vFront, vSync };
}

/** The 128-byte EDID block for a panel whose largest mode is width x height. */
export function buildEdid(options: EdidOptions): Uint8Array {
  const { width, height } = options;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 64 || height < 64 || width > 4095 || height > 4095) {
    throw new RangeError(`EDID: mode ${width}x${height} is outside 64..4095`);
  }
  const e = new Uint8Array(EDID_BLOCK_SIZE);
  e.set(HEADER, 0);
  const id = [...MANUFACTURER].reduce((acc, c) => (acc << 5) | (c.charCodeAt(0) - 64), 0);
  e[8] = id >> 8;
  e[9] = id & 0xff;
  le16(e, 10, options.product ?? 0x0001);
  le32(e, 12, options.serial ?? 0);
  e[16] = 1; // week of manufacture
  e[17] = 2026 - 1990;
  e[18] = 1; // EDID 1.4
  e[19] = 4;
  e[20] = 0x80 | 0x20; // digital input, 8 bits per colour
  const widthMm = Math.round((width * 25.4) / DPI);
  const heightMm = Math.round((height * 25.4) / DPI);
  e[21] = Math.max(1, Math.round(widthMm / 10)); // cm
  e[22] = Math.max(1, Math.round(heightMm / 10));
  e[23] = 120; // gamma 2.2: (gamma * 100) - 100
  e[24] = 0x04 | 0x02; // sRGB is the default colour space; the first timing is preferred
  chromaticity(e);
  for (const m of ESTABLISHED) if (m.width <= width && m.height <= height) e[m.byte]! |= 1 << m.bit;
  for (let i = 38; i < 54; i++) e[i] = 0x01; // no standard timings
  const timing = timingFor(width, height);
  detailedTiming(e, 54, timing, widthMm, heightMm);
  rangeLimits(e, 72, timing);
  textDescriptor(e, 90, 0xfc, EDID_PRODUCT_NAME);
  e[108 + 3] = 0x10; // dummy descriptor
  e[126] = 0; // no extension blocks
  e[127] = (256 - (e.subarray(0, 127).reduce((a, b) => a + b, 0) % 256)) % 256;
  return e;
}

/** The preferred mode of an EDID block's first detailed timing descriptor. */
export function preferredMode(edid: Uint8Array): { width: number; height: number } {
  const d = 54;
  return { width: edid[d + 2]! | ((edid[d + 4]! >> 4) << 8), height: edid[d + 5]! | ((edid[d + 7]! >> 4) << 8) };
}

function le16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >> 8) & 0xff;
}

function le32(b: Uint8Array, at: number, v: number): void {
  le16(b, at, v & 0xffff);
  le16(b, at + 2, v >>> 16);
}

/** sRGB primaries and D65 white as 10-bit fractions, split into low bits and high bytes. */
function chromaticity(e: Uint8Array): void {
  const xy = [0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329].map((v) => Math.round(v * 1024));
  const lo = (i: number): number => xy[i]! & 3;
  e[25] = (lo(0) << 6) | (lo(1) << 4) | (lo(2) << 2) | lo(3);
  e[26] = (lo(4) << 6) | (lo(5) << 4) | (lo(6) << 2) | lo(7);
  xy.forEach((v, i) => { e[27 + i] = v >> 2; });
}

function detailedTiming(e: Uint8Array, at: number, t: DetailedTiming, widthMm: number, heightMm: number): void {
  le16(e, at, t.pixelClock10kHz);
  e[at + 2] = t.hActive & 0xff;
  e[at + 3] = t.hBlank & 0xff;
  e[at + 4] = ((t.hActive >> 8) << 4) | (t.hBlank >> 8);
  e[at + 5] = t.vActive & 0xff;
  e[at + 6] = t.vBlank & 0xff;
  e[at + 7] = ((t.vActive >> 8) << 4) | (t.vBlank >> 8);
  e[at + 8] = t.hFront & 0xff;
  e[at + 9] = t.hSync & 0xff;
  e[at + 10] = ((t.vFront & 0xf) << 4) | (t.vSync & 0xf);
  e[at + 11] = ((t.hFront >> 8) << 6) | ((t.hSync >> 8) << 4) | ((t.vFront >> 4) << 2) | (t.vSync >> 4);
  e[at + 12] = widthMm & 0xff;
  e[at + 13] = heightMm & 0xff;
  e[at + 14] = ((widthMm >> 8) << 4) | (heightMm >> 8);
  e[at + 17] = 0x18 | 0x02; // digital separate sync, +hsync -vsync (reduced blanking)
}

function rangeLimits(e: Uint8Array, at: number, t: DetailedTiming): void {
  const hFreqKHz = (t.pixelClock10kHz * 10) / (t.hActive + t.hBlank);
  e[at + 3] = 0xfd;
  e.set([50, 75, 30, Math.min(255, Math.ceil(hFreqKHz * 1.25)), Math.ceil(t.pixelClock10kHz / 1000) + 1, 0x01, 0x0a], at + 5);
  e.fill(0x20, at + 12, at + 18);
}

function textDescriptor(e: Uint8Array, at: number, tag: number, text: string): void {
  e[at + 3] = tag;
  const bytes = [...text.slice(0, 13)].map((c) => c.charCodeAt(0) & 0x7f);
  if (bytes.length < 13) bytes.push(0x0a);
  while (bytes.length < 13) bytes.push(0x20);
  e.set(bytes, at + 5);
}
