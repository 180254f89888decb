// Pixels to draw on: rows of 32-bit XRGB8888 values (0x00RRGGBB), `pitch` values apart,
// over any memory: the guest's mmap of the framebuffer, or a plain array a test draws
// the same picture into to compare.
import { GLYPH_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyphPixel } from './font.js';

export interface Canvas {
  readonly width: number;
  readonly height: number;
  /** Pixels from the start of one row to the next (stride / 4). */
  readonly pitch: number;
  readonly pixels: Uint32Array;
}

/** A canvas in ordinary memory, rows packed. */
export function createCanvas(width: number, height: number): Canvas {
  return { width, height, pitch: width, pixels: new Uint32Array(width * height) };
}

/** Fills the part of the rectangle inside the canvas. */
export function fillRect(c: Canvas, x: number, y: number, w: number, h: number, color: number): void {
  const x0 = Math.max(0, x);
  const x1 = Math.min(c.width, x + w);
  const value = color >>> 0;
  for (let row = Math.max(0, y); row < Math.min(c.height, y + h); row++) {
    if (x1 > x0) c.pixels.fill(value, row * c.pitch + x0, row * c.pitch + x1);
  }
}

/** Draws `text` in the 5x7 font, each font pixel a scale x scale square, top left at (x, y). */
export function drawText(c: Canvas, text: string, x: number, y: number, scale: number, color: number): void {
  [...text].forEach((ch, i) => {
    const left = x + i * GLYPH_ADVANCE * scale;
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (glyphPixel(ch, gx, gy)) fillRect(c, left + gx * scale, y + gy * scale, scale, scale, color);
      }
    }
  });
}

/** The pixel at (x, y). */
export function pixelAt(c: Canvas, x: number, y: number): number {
  return c.pixels[y * c.pitch + x]!;
}
