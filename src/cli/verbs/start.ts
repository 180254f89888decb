// `vgpu start`: creates and starts a vGPU: a defined one by -u, or a one-off from -p and
// -t (or --jsonfile). A UUID it generated is printed alone on stdout: libvirt reads it.
import type { StartRequest } from '../../host/api.js';
import { conflicts, stringValue } from '../args.js';
import { withDaemon } from '../context.js';
import { UsageError } from '../usage.js';
import { readJsonFile } from './jsonfile.js';
import type { VerbSpec } from './verb.js';

export const startVerb: VerbSpec = {
  name: 'start',
  summary: 'Create and start a vGPU: a defined one, or a one-off from a parent and a type. Needs the daemon.',
  usage: 'start [-u UUID] [-p PARENT (-t TYPE | --jsonfile FILE)]',
  help: [
    '  -u, --uuid UUID       the vGPU\'s UUID (generated and printed when not given)',
    '  -p, --parent PARENT   the parent device',
    '  -t, --type TYPE       the vGPU type (see `vgpu types`)',
    '  --jsonfile FILE       a definition in mdevctl\'s JSON (type, start, attrs); not with -t',
  ],
  options: {
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    type: { type: 'string', short: 't' },
    jsonfile: { type: 'string' },
  },
  async run({ values }, cli) {
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
  },
};
