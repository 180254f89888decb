// `vgpu info UUID|BDF|SOCKET`: a live device's regions, interrupts, config space decoded
// the way `lspci -vv` shows it, and its live DMA mappings, as the host reports them. A
// vfio-user socket is read by this process itself, through the vfio-user client, never
// by the daemon: the daemon may be the very server of that socket, and the client
// blocks while it waits for the server's replies.
import { describeVfioUser } from '../../host/info.js';
import { isSocketPath } from '../../vfio/index.js';
import { withLiveHost, type Cli } from '../context.js';
import { UsageError } from '../usage.js';
import type { Parsed } from '../args.js';

export async function run({ positionals }: Parsed, cli: Cli): Promise<number> {
  const target = positionals[0];
  if (target === undefined) throw new UsageError('info needs a UUID, a PCI address or a socket path', 'info');
  const report = isSocketPath(target) ? describeVfioUser(target) : await withLiveHost(cli, (host) => host.info(target));
  // The report's first line usually names the device already.
  if (!report.lines[0]?.includes(report.name)) cli.output.out(report.name);
  for (const line of report.lines) cli.output.out(line);
  return 0;
}
