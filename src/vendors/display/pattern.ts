// The display's test pattern: eight full-intensity colour bars over the top two thirds,
// a grey ramp below them, and the caption in the font on a black band at the bottom,
// with the mode under it. Any mode from 64x64 up draws it.
import { type Canvas, drawText, fillRect } from './canvas.js';
import { GLYPH_HEIGHT, textWidth } from './font.js';

/** White, yellow, cyan, green, magenta, red, blue, black (0x00RRGGBB). */
export const COLOUR_BARS: readonly number[] = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000];
const RAMP_STEPS = 16;

export const DEFAULT_CAPTION = 'vfio-vgpu';

/** The rows each part takes: bars, ramp, caption band. */
export function patternLayout(height: number): { barsEnd: number; rampEnd: number } {
  const barsEnd = Math.floor((height * 2) / 3);
  return { barsEnd, rampEnd: barsEnd + Math.floor(height / 12) };
}

export function drawTestPattern(c: Canvas, caption = DEFAULT_CAPTION): void {
  const { width, height } = c;
  const { barsEnd, rampEnd } = patternLayout(height);
  COLOUR_BARS.forEach((colour, i) => {
    const x0 = Math.floor((i * width) / COLOUR_BARS.length);
    const x1 = Math.floor(((i + 1) * width) / COLOUR_BARS.length);
    fillRect(c, x0, 0, x1 - x0, barsEnd, colour);
  });
  for (let i = 0; i < RAMP_STEPS; i++) {
    const x0 = Math.floor((i * width) / RAMP_STEPS);
    const x1 = Math.floor(((i + 1) * width) / RAMP_STEPS);
    const g = Math.round((i * 255) / (RAMP_STEPS - 1));
    fillRect(c, x0, barsEnd, x1 - x0, rampEnd - barsEnd, (g << 16) | (g << 8) | g);
  }
  fillRect(c, 0, rampEnd, width, height - rampEnd, 0x000000);
  const band = height - rampEnd;
  const mode = `${width}x${height}`;
  // The caption as large as fits two thirds of the band's height and most of its width.
  const scale = Math.max(1, Math.min(Math.floor((band * 2) / 3 / (GLYPH_HEIGHT + 2)), Math.floor((width * 0.8) / textWidth(caption))));
  const small = Math.max(1, Math.floor(scale / 3));
  const top = rampEnd + Math.max(0, Math.floor((band - (GLYPH_HEIGHT * scale + 2 * small + GLYPH_HEIGHT * small)) / 2));
  drawText(c, caption, Math.floor((width - textWidth(caption, scale)) / 2), top, scale, 0xffffff);
  drawText(c, mode, Math.floor((width - textWidth(mode, small)) / 2), top + GLYPH_HEIGHT * scale + 2 * small, small, 0x00ff00);
}
