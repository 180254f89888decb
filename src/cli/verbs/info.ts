// `vgpu info UUID|BDF`: a live device's regions, interrupts, config space decoded the
// way `lspci -vv` shows it, and its live DMA mappings, as the host reports them.
import { withLiveHost } from '../context.js';
import { UsageError } from '../usage.js';
import type { VerbSpec } from './verb.js';

export const infoVerb: VerbSpec = {
  name: 'info',
  summary: 'Show a live vGPU (by UUID) or PCI device (by address): regions, IRQs, config space, DMA mappings.',
  usage: 'info UUID|BDF',
  help: ['  UUID|BDF              a live vGPU\'s UUID or a PCI address like 0000:00:04.0'],
  options: {},
  maxPositionals: 1,
  async run({ positionals }, cli) {
    const target = positionals[0];
    if (target === undefined) throw new UsageError('info needs a UUID or a PCI address', 'info');
    const report = await withLiveHost(cli, (host) => host.info(target));
    // The report's first line usually names the device already.
    if (!report.lines[0]?.includes(report.name)) cli.output.out(report.name);
    for (const line of report.lines) cli.output.out(line);
    return 0;
  },
};
