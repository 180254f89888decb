// `vgpu start`: creates and starts a vGPU: a defined one by -u, or a one-off from -p and
// -t (or --jsonfile). A UUID it generated is printed alone on stdout: libvirt reads it.
import type { StartRequest } from '../../host/api.js';
import { conflicts, stringValue, type Parsed } from '../args.js';
import { withDaemon, type Cli } from '../context.js';
import { UsageError } from '../usage.js';
import { readJsonFile } from './jsonfile.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  conflicts('start', values, 'jsonfile', ['type']);
  const uuid = stringValue(values, 'uuid');
  const parent = stringValue(values, 'parent');
  const type = stringValue(values, 'type');
  const jsonfile = stringValue(values, 'jsonfile');
  if ((type !== undefined || jsonfile !== undefined) && parent === undefined) throw new UsageError(`start needs -p PARENT with ${type !== undefined ? '-t' : '--jsonfile'}`, 'start');
  if (type === undefined && jsonfile === undefined) {
    if (uuid === undefined) throw new UsageError('start needs -u UUID of a definition, or -p PARENT with -t TYPE or --jsonfile FILE', 'start');
  }
  const request: StartRequest = {};
  if (uuid !== undefined) request.uuid = uuid;
  if (parent !== undefined) request.parent = parent;
  if (type !== undefined) request.type = type;
  if (jsonfile !== undefined) request.definition = readJsonFile(jsonfile);
  const started = await withDaemon(cli, (host) => host.start(request));
  if (uuid === undefined) cli.output.out(started);
  return 0;
}
