// `vgpu screenshot UUID|SOCKET FILE.png`: what a display vGPU shows now, saved as a PNG.
// A vfio-user socket is captured by this process through the vfio-user client (as
// `vgpu info SOCKET` reads one), never by the daemon, which may be that socket's server.
import { resolve } from 'node:path';
import { PNG } from 'pngjs';
import { writeFileAtomic } from '../../host/atomic-write.js';
import { createNativeSys } from '../../sys/native.js';
import { screenshotPng } from '../../vendors/display/screenshot.js';
import { isSocketPath } from '../../vfio/index.js';
import { withLiveHost, type Cli } from '../context.js';
import { UsageError } from '../usage.js';
import type { Parsed } from '../args.js';

export async function run({ positionals }: Parsed, cli: Cli): Promise<number> {
  const [target, file] = positionals;
  if (target === undefined || file === undefined) throw new UsageError('screenshot needs a UUID or socket path and a file name', 'screenshot');
  const path = resolve(file);
  if (isSocketPath(target)) {
    const png = screenshotPng(createNativeSys(), target);
    const { width, height } = PNG.sync.read(png);
    writeFileAtomic(path, png);
    cli.output.out(`${path}: ${width}x${height} PNG of ${target}`);
    return 0;
  }
  const shot = await withLiveHost(cli, (host) => host.screenshot(target));
  writeFileAtomic(path, Buffer.from(shot.pngBase64, 'base64'));
  cli.output.out(`${path}: ${shot.width}x${shot.height} PNG of ${shot.uuid}`);
  return 0;
}
