// `vgpu types [-p PARENT] [--dumpjson]`: every parent's types and how many more fit.
import { flag, stringValue, type Parsed } from '../args.js';
import { withLiveHost, type Cli } from '../context.js';
import { table } from '../output.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const parent = stringValue(values, 'parent');
  const types = await withLiveHost(cli, (host) => host.types(parent === undefined ? {} : { parent }));
  if (flag(values, 'dumpjson')) {
    // Loaded only here: the table needs no JSON writer (nor the name checks it imports).
    const { typesJson } = await import('../../host/mdevctl-json.js');
    cli.output.out(typesJson(types));
    return 0;
  }
  const rows = types.map((t) => [t.parent, { text: t.id, style: 'cyan' as const },
    { text: String(t.availableInstances), style: t.availableInstances > 0 ? 'green' as const : 'red' as const },
    t.deviceApi, t.name, t.description]);
  for (const line of table(cli.output, rows, ['PARENT', 'TYPE', 'AVAILABLE', 'API', 'NAME', 'DESCRIPTION'])) cli.output.out(line);
  return 0;
}
