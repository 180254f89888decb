// `vgpu info UUID|BDF|SOCKET`: a live device's regions, interrupts, config space decoded
// the way `lspci -vv` shows it, and its live DMA mappings, as the host reports them. A
// vfio-user socket is read by this process itself, through the vfio-user client, never
// by the daemon: the daemon may be the very server of that socket, and the client
// blocks while it waits for the server's replies.
import { describeVfioUser } from '../../host/info.js';
import { isSocketPath } from '../../vfio/index.js';
import { withLiveHost } from '../context.js';
import { UsageError } from '../usage.js';
import type { VerbSpec } from './verb.js';

export const infoVerb: VerbSpec = {
  name: 'info',
  summary: 'Show a live vGPU (by UUID), PCI device (by address) or vfio-user device (by socket): regions, IRQs, config space, DMA mappings.',
  usage: 'info UUID|BDF|SOCKET',
  help: [
    '  UUID|BDF              a live vGPU\'s UUID or a PCI address like 0000:00:04.0',
    '  SOCKET                the path of a vfio-user socket (one with a \'/\' or ending in .sock),',
    '                        read here through the vfio-user client',
  ],
  options: {},
  maxPositionals: 1,
  async run({ positionals }, cli) {
    const target = positionals[0];
    if (target === undefined) throw new UsageError('info needs a UUID, a PCI address or a socket path', 'info');
    const report = isSocketPath(target) ? describeVfioUser(target) : await withLiveHost(cli, (host) => host.info(target));
    // The report's first line usually names the device already.
    if (!report.lines[0]?.includes(report.name)) cli.output.out(report.name);
    for (const line of report.lines) cli.output.out(line);
    return 0;
  },
};
