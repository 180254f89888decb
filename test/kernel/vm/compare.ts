// The vm-display check on the host: the PNG `vgpu screenshot` wrote must be the test
// pattern the guest drew, every pixel.
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { createCanvas, drawTestPattern, pixelAt } from '../../../src/vendors/display/index.js';

export interface Comparison {
  ok: boolean;
  detail: string;
}

/** Compares an RGBA image with the pattern at width x height. */
export function comparePattern(image: { width: number; height: number; data: Uint8Array }, width: number, height: number): Comparison {
  if (image.width !== width || image.height !== height) {
    return { ok: false, detail: `the screenshot is ${image.width}x${image.height}, the guest drew ${width}x${height}` };
  }
  const want = createCanvas(width, height);
  drawTestPattern(want);
  let differing = 0;
  let first = '';
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 4;
      const got = (image.data[at]! << 16) | (image.data[at + 1]! << 8) | image.data[at + 2]!;
      if (got !== pixelAt(want, x, y)) {
        if (differing++ === 0) first = `(${x}, ${y}) is 0x${got.toString(16)}, drawn 0x${pixelAt(want, x, y).toString(16)}`;
      }
    }
  }
  const total = width * height;
  return differing === 0
    ? { ok: true, detail: `${total} of ${total} pixels equal (${width}x${height})` }
    : { ok: false, detail: `${differing} of ${total} pixels differ; first ${first}` };
}

export function comparePatternPng(file: string, width: number, height: number): Comparison {
  return comparePattern(PNG.sync.read(readFileSync(file)), width, height);
}
