// `vgpu modify -u UUID ...`: changes a saved definition (type, start mode, attributes,
// or the whole of it from --jsonfile), as mdevctl's modify does without --live.
import type { ModifyRequest } from '../../host/api.js';
import { conflicts, flag, requireOption, stringValue, type Parsed } from '../args.js';
import { withDefinitions, type Cli } from '../context.js';
import { UsageError } from '../usage.js';
import { readJsonFile } from './jsonfile.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
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
}

function parseIndex(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--index must be a number from 0, not '${text}'`, 'modify');
  return Number(text);
}
