// `vgpu define`: saves a definition (<root>/<parent>/<uuid>): from -p and -t (or
// --jsonfile), or with -u alone from a live vGPU. A generated UUID is printed.
import type { DefineRequest } from '../../host/api.js';
import { conflicts, flag, stringValue } from '../args.js';
import { withDaemon, withDefinitions } from '../context.js';
import { UsageError } from '../usage.js';
import { readJsonFile } from './jsonfile.js';
import type { VerbSpec } from './verb.js';

export const defineVerb: VerbSpec = {
  name: 'define',
  summary: 'Save a vGPU definition: from a parent and a type, from a JSON file, or (-u alone) from a live vGPU.',
  usage: 'define [-u UUID] [-p PARENT (-t TYPE [-a] | --jsonfile FILE)]',
  help: [
    '  -u, --uuid UUID       the UUID (generated and printed when not given)',
    '  -p, --parent PARENT   the parent device',
    '  -t, --type TYPE       the vGPU type',
    '  -a, --auto            start it when the daemon starts or its parent appears',
    '  --jsonfile FILE       a definition in mdevctl\'s JSON; not with -t or -a',
  ],
  options: {
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    type: { type: 'string', short: 't' },
    auto: { type: 'boolean', short: 'a' },
    jsonfile: { type: 'string' },
  },
  async run({ values }, cli) {
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
    if (jsonfile !== undefined) request.definition = readJsonFile(jsonfile);
    const defined = await withDefinitions(cli, (host) => host.define(request));
    if (uuid === undefined) cli.output.out(defined);
    return 0;
  },
};
