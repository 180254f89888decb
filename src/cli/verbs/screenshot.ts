// `vgpu screenshot UUID FILE.png`: what a display vGPU shows now, saved as a PNG.
import { resolve } from 'node:path';
import { writeFileAtomic } from '../../host/atomic-write.js';
import { withLiveHost } from '../context.js';
import { UsageError } from '../usage.js';
import type { VerbSpec } from './verb.js';

export const screenshotVerb: VerbSpec = {
  name: 'screenshot',
  summary: 'Save what a display vGPU shows (its QUERY_GFX_PLANE plane) as a PNG file.',
  usage: 'screenshot UUID FILE.png',
  help: [
    '  UUID                  a live display vGPU that no user holds open',
    '  FILE.png              written atomically (a crash leaves the old file or the new one)',
  ],
  options: {},
  maxPositionals: 2,
  async run({ positionals }, cli) {
    const [uuid, file] = positionals;
    if (uuid === undefined || file === undefined) throw new UsageError('screenshot needs a UUID and a file name', 'screenshot');
    const shot = await withLiveHost(cli, (host) => host.screenshot(uuid));
    const path = resolve(file);
    writeFileAtomic(path, Buffer.from(shot.pngBase64, 'base64'));
    cli.output.out(`${path}: ${shot.width}x${shot.height} PNG of ${shot.uuid}`);
    return 0;
  },
};
