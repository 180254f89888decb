// `vgpu stop -u UUID`: stops and removes a live vGPU (its definition stays).
import { requireOption } from '../args.js';
import { withDaemon } from '../context.js';
import type { VerbSpec } from './verb.js';

export const stopVerb: VerbSpec = {
  name: 'stop',
  summary: 'Stop and remove a live vGPU (a definition of it stays). Needs the daemon.',
  usage: 'stop -u UUID',
  help: ['  -u, --uuid UUID       the vGPU to stop'],
  options: { uuid: { type: 'string', short: 'u' } },
  async run({ values }, cli) {
    const uuid = requireOption('stop', values, 'uuid', ' UUID');
    await withDaemon(cli, (host) => host.stop(uuid));
    return 0;
  },
};
