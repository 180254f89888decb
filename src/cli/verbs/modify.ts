// `vgpu modify -u UUID ...`: changes a saved definition (type, start mode, attributes,
// or the whole of it from --jsonfile), as mdevctl's modify does without --live.
import type { ModifyRequest } from '../../host/api.js';
import { conflicts, flag, requireOption, stringValue } from '../args.js';
import { withDefinitions } from '../context.js';
import { UsageError } from '../usage.js';
import { readJsonFile } from './jsonfile.js';
import type { VerbSpec } from './verb.js';

export const modifyVerb: VerbSpec = {
  name: 'modify',
  summary: 'Change a saved definition: its type, start mode or attributes.',
  usage: 'modify -u UUID [-p PARENT] [-t TYPE] [--auto|--manual] [--addattr NAME --value V [--index N]] [--delattr [--index N]] [--jsonfile FILE]',
  help: [
    '  -u, --uuid UUID       the definition to change',
    '  -p, --parent PARENT   the parent, when the UUID is defined under several',
    '  -t, --type TYPE       a new type',
    '  -a, --auto            start it automatically',
    '  -m, --manual          start it only on request',
    '  --addattr NAME        add an attribute (with --value, at --index or at the end)',
    '  --value V             the added attribute\'s value',
    '  --delattr             remove the attribute at --index, or the last one',
    '  --index N             where --addattr inserts or which one --delattr removes',
    '  --jsonfile FILE       replace type, start and attrs from mdevctl\'s JSON; alone',
  ],
  options: {
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    type: { type: 'string', short: 't' },
    auto: { type: 'boolean', short: 'a' },
    manual: { type: 'boolean', short: 'm' },
    addattr: { type: 'string' },
    value: { type: 'string' },
    delattr: { type: 'boolean' },
    index: { type: 'string' },
    jsonfile: { type: 'string' },
  },
  async run({ values }, cli) {
    const uuid = requireOption('modify', values, 'uuid', ' UUID');
    conflicts('modify', values, 'jsonfile', ['type', 'auto', 'manual', 'addattr', 'delattr', 'value', 'index']);
    conflicts('modify', values, 'auto', ['manual']);
    conflicts('modify', values, 'addattr', ['delattr']);
    if (values['addattr'] !== undefined && values['value'] === undefined) throw new UsageError('--addattr needs --value', 'modify');
    if (values['value'] !== undefined && values['addattr'] === undefined) throw new UsageError('--value goes with --addattr', 'modify');
    if (values['index'] !== undefined && values['addattr'] === undefined && values['delattr'] === undefined) throw new UsageError('--index goes with --addattr or --delattr', 'modify');
    const request: ModifyRequest = { uuid };
    const parent = stringValue(values, 'parent');
    const type = stringValue(values, 'type');
    const jsonfile = stringValue(values, 'jsonfile');
    if (parent !== undefined) request.parent = parent;
    if (type !== undefined) request.type = type;
    if (flag(values, 'auto')) request.start = 'auto';
    if (flag(values, 'manual')) request.start = 'manual';
    const index = parseIndex(stringValue(values, 'index'));
    const addattr = stringValue(values, 'addattr');
    if (addattr !== undefined) request.addAttr = { name: addattr, value: stringValue(values, 'value') as string, ...(index === undefined ? {} : { index }) };
    if (flag(values, 'delattr')) request.delAttr = index === undefined ? {} : { index };
    if (jsonfile !== undefined) request.definition = readJsonFile(jsonfile);
    if (Object.keys(request).every((k) => k === 'uuid' || k === 'parent')) {
      throw new UsageError('modify needs a change: -t, --auto, --manual, --addattr, --delattr or --jsonfile', 'modify');
    }
    await withDefinitions(cli, (host) => host.modify(request));
    return 0;
  },
};

function parseIndex(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--index must be a number from 0, not '${text}'`, 'modify');
  return Number(text);
}
