// `vgpu screenshot UUID|SOCKET FILE.png`: what a display vGPU shows now, saved as a PNG.
// A vfio-user socket is captured by this process through the vfio-user client (as
// `vgpu info SOCKET` reads one), never by the daemon, which may be that socket's server.
import { resolve } from 'node:path';
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../../host/atomic-write.js';
import { createNativeSys } from '../../sys/native.js';
import { screenshotPng } from '../../vendors/display/screenshot.js';
import { isSocketPath } from '../../vfio/index.js';
import { withLiveHost } from '../context.js';
import { UsageError } from '../usage.js';
import type { VerbSpec } from './verb.js';

export const screenshotVerb: VerbSpec = {
  name: 'screenshot',
  summary: 'Save what a display vGPU shows (its QUERY_GFX_PLANE plane) as a PNG file.',
  usage: 'screenshot UUID|SOCKET FILE.png',
  help: [
    '  UUID                  a live display vGPU that no user holds open',
    '  SOCKET                or the path of its vfio-user socket, captured here through the client',
    '  FILE.png              written atomically (a crash leaves the old file or the new one)',
  ],
  options: {},
  maxPositionals: 2,
  async run({ positionals }, cli) {
    const [target, file] = positionals;
    if (target === undefined || file === undefined) throw new UsageError('screenshot needs a UUID (or socket path) and a file name', 'screenshot');
    let png: Buffer;
    let name: string;
    if (isSocketPath(target)) {
      png = screenshotPng(createNativeSys(), target);
      name = target;
    } else {
      const shot = await withLiveHost(cli, (host) => host.screenshot(target));
      png = Buffer.from(shot.pngBase64, 'base64');
      name = shot.uuid;
    }
    const { width, height } = PNG.sync.read(png);
    const path = resolve(file);
    writeFileAtomic(path, png);
    cli.output.out(`${path}: ${width}x${height} PNG of ${name}`);
    return 0;
  },
};
