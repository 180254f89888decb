// `vgpu undefine -u UUID [-p PARENT]`: removes saved definitions (a live vGPU keeps running).
import { sysError } from '../../addon/errors.js';
import { requireOption, stringValue } from '../args.js';
import { withDefinitions } from '../context.js';
import type { VerbSpec } from './verb.js';

export const undefineVerb: VerbSpec = {
  name: 'undefine',
  summary: 'Remove the saved definitions of a UUID (under every parent unless -p names one).',
  usage: 'undefine -u UUID [-p PARENT]',
  help: [
    '  -u, --uuid UUID       the definition to remove',
    '  -p, --parent PARENT   only under this parent',
  ],
  options: { uuid: { type: 'string', short: 'u' }, parent: { type: 'string', short: 'p' } },
  async run({ values }, cli) {
    const uuid = requireOption('undefine', values, 'uuid', ' UUID');
    const parent = stringValue(values, 'parent');
    const removed = await withDefinitions(cli, (host) => host.undefine(uuid, parent));
    if (removed === 0) {
      const err = sysError('ENOENT', 'unlink');
      err.message = `no definition of ${uuid}${parent === undefined ? '' : ` under ${parent}`}`;
      throw err;
    }
    return 0;
  },
};
