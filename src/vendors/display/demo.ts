// The display vGPU end to end, for `npm start` and the CLI: a display parent on the
// registry, a display-vga vGPU created, a guest that sets 640x480x32 through the dispi
// registers and draws the test pattern through its framebuffer mmap, then a screenshot
// taken as a VMM would (QUERY_GFX_PLANE and the framebuffer region) and saved as a PNG,
// and the vGPU removed. Returns a short text summary.
import { writeFileSync } from 'node:fs';
import type { SysLayer } from '../../sys/types.js';
import type { VgpuRegistry } from '../../vgpu/registry.js';
import { DisplayGuest } from './guest.js';
import { displayDriver } from './driver.js';
import { DisplayParent } from './parent.js';
import { screenshotPng } from './screenshot.js';

export interface DisplayDemoOptions {
  /** The vGPU's UUID; default a fixed one. */
  uuid?: string;
  /** The type's name; default "vga". */
  type?: string;
  /** The mode; default the type's largest. */
  width?: number;
  height?: number;
}

export const DISPLAY_DEMO_UUID = '5e1ec7ed-d15b-4a7e-9c0d-000000000640';

/**
 * `registry` must be attached to `sys`'s kernel (attachMockKernel) so the vGPU is a VFIO
 * device the client can open. The driver and a "display0" parent are added if missing.
 */
export function runDisplayDemo(sys: SysLayer, registry: VgpuRegistry, outPath: string, options: DisplayDemoOptions = {}): string {
  if (!registry.driverList().some((d) => d.name === displayDriver.name)) registry.registerDriver(displayDriver);
  const parent = registry.parent('display0') ?? registry.addParent(displayDriver.name, new DisplayParent());
  const typeName = options.type ?? 'vga';
  const type = parent.typeList().find((t) => t.type.name === typeName);
  if (!type) throw new RangeError(`display0 offers no type ${typeName}`);
  const uuid = options.uuid ?? DISPLAY_DEMO_UUID;
  const lines: string[] = [];
  registry.create(parent.parent.name, type.id, uuid);
  try {
    lines.push(`created ${type.id} vGPU ${uuid} on ${parent.parent.name} (${type.type.description})`);
    const guest = DisplayGuest.open(sys, uuid);
    try {
      const max = guest.maxResolution();
      const mode = guest.setMode(options.width ?? max.width, options.height ?? max.height);
      guest.drawTestPattern();
      lines.push(`guest: dispi id 0x${guest.id.toString(16)}, ${guest.videoMemory / 2 ** 20} MiB video memory, ` +
        `mode ${mode.width}x${mode.height}x32 set; colour bars and "vfio-vgpu" drawn through the BAR0 mmap`);
    } finally {
      guest.close();
    }
    const png = screenshotPng(sys, uuid);
    writeFileSync(outPath, png);
    lines.push(`screenshot (QUERY_GFX_PLANE region plane, BAR0 mapped): ${outPath}, ${png.byteLength} bytes of PNG`);
  } finally {
    registry.remove(uuid);
  }
  lines.push(`removed ${uuid}`);
  return lines.join('\n');
}
