// `vgpu define`: saves a definition (<root>/<parent>/<uuid>): from -p and -t (or
// --jsonfile), or with -u alone from a live vGPU. A generated UUID is printed.
import type { DefineRequest } from '../../host/api.js';
import { conflicts, flag, stringValue, type Parsed } from '../args.js';
import { withDaemon, withDefinitions, type Cli } from '../context.js';
import { UsageError } from '../usage.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  conflicts('define', values, 'jsonfile', ['type', 'auto']);
  const uuid = stringValue(values, 'uuid');
  const parent = stringValue(values, 'parent');
  const type = stringValue(values, 'type');
  const jsonfile = stringValue(values, 'jsonfile');
  const request: DefineRequest = {};
  if (uuid !== undefined) request.uuid = uuid;
  if (parent !== undefined) request.parent = parent;
  if (type !== undefined) request.type = type;
  if (flag(values, 'auto')) request.start = 'auto';
  if (type === undefined && jsonfile === undefined) {
    // From a live vGPU: only the daemon knows it.
    if (uuid === undefined) throw new UsageError('define needs -p PARENT with -t TYPE or --jsonfile FILE, or -u UUID of a live vGPU', 'define');
    await withDaemon(cli, (host) => host.define(request));
    return 0;
  }
  if (parent === undefined) throw new UsageError(`define needs -p PARENT with ${type !== undefined ? '-t' : '--jsonfile'}`, 'define');
  // Loaded here: -p -t needs no JSON parser.
  if (jsonfile !== undefined) request.definition = (await import('./jsonfile.js')).readJsonFile(jsonfile);
  const defined = await withDefinitions(cli, (host) => host.define(request));
  if (uuid === undefined) cli.output.out(defined);
  return 0;
}
