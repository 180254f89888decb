// `vgpu screenshot UUID|SOCKET FILE.png|-`: what a display vGPU shows now, saved as a PNG.
// A vfio-user socket is captured by this process through the vfio-user client (as
// `vgpu info SOCKET` reads one), never by the daemon, which may be that socket's server.
import { PNG } from 'pngjs';
import { createNativeSys } from '../../sys/native.js';
import { screenshotPng } from '../../vendors/display/screenshot.js';
import { isSocketPath } from '../../vfio/index.js';
import { withLiveHost, type Cli } from '../context.js';
import { UsageError } from '../usage.js';
import type { Parsed } from '../args.js';
import { savePng } from './png-file.js';

export async function run({ positionals }: Parsed, cli: Cli): Promise<number> {
  const [target, file] = positionals;
  if (target === undefined || file === undefined) throw new UsageError('screenshot needs a UUID or socket path and a file name', 'screenshot');
  // With `-` the PNG is stdout, so the summary goes to stderr.
  const say = (line: string): void => (file === '-' ? cli.output.err(line) : cli.output.out(line));
  if (isSocketPath(target)) {
    const png = screenshotPng(createNativeSys(), target);
    const { width, height } = PNG.sync.read(png);
    say(`${savePng(file, png, cli.output)}: ${width}x${height} PNG of ${target}`);
    return 0;
  }
  const shot = await withLiveHost(cli, (host) => host.screenshot(target));
  say(`${savePng(file, Buffer.from(shot.pngBase64, 'base64'), cli.output)}: ${shot.width}x${shot.height} PNG of ${shot.uuid}`);
  return 0;
}
