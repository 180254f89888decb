// `vgpu types [-p PARENT] [--dumpjson]`: every parent's types and how many more fit.
import { flag, stringValue } from '../args.js';
import { withLiveHost } from '../context.js';
import { typesJson } from '../host-link.js';
import { table } from '../output.js';
import type { VerbSpec } from './verb.js';

export const typesVerb: VerbSpec = {
  name: 'types',
  summary: 'List the vGPU types each parent offers, with their available instances.',
  usage: 'types [-p PARENT] [--dumpjson]',
  help: [
    '  -p, --parent PARENT   only this parent',
    '  --dumpjson            mdevctl\'s JSON: [{"PARENT": [{"TYPE": {...}}]}]',
  ],
  options: { parent: { type: 'string', short: 'p' }, dumpjson: { type: 'boolean' } },
  async run({ values }, cli) {
    const parent = stringValue(values, 'parent');
    const types = await withLiveHost(cli, (host) => host.types(parent === undefined ? {} : { parent }));
    if (flag(values, 'dumpjson')) {
      cli.output.out(typesJson(types));
      return 0;
    }
    const rows = types.map((t) => [t.parent, { text: t.id, style: 'cyan' as const },
      { text: String(t.availableInstances), style: t.availableInstances > 0 ? 'green' as const : 'red' as const },
      t.deviceApi, t.name, t.description]);
    for (const line of table(cli.output, rows, ['PARENT', 'TYPE', 'AVAILABLE', 'API', 'NAME', 'DESCRIPTION'])) cli.output.out(line);
    return 0;
  },
};
