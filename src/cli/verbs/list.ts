// `vgpu list [-d] [-u UUID] [-p PARENT] [-v] [--dumpjson]`: the vGPUs that exist now, or
// (-d) the saved definitions, one line each as mdevctl prints them.
import { relative, sep } from 'node:path';
import type { Definition, DefinitionAttr, LiveDevice } from '../../host/api.js';
import { flag, stringValue, type Parsed } from '../args.js';
import { withDefinitions, withLiveHost, type Cli } from '../context.js';
import { unreadableDefinitions } from '../definitions-link.js';
import { spaced, type Cell, type Output } from '../output.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const filter: { uuid?: string; parent?: string } = {};
  const uuid = stringValue(values, 'uuid');
  const parent = stringValue(values, 'parent');
  if (uuid !== undefined) filter.uuid = uuid;
  if (parent !== undefined) filter.parent = parent;
  const verbose = flag(values, 'verbose');
  const dumpjson = flag(values, 'dumpjson');
  if (flag(values, 'defined')) {
    // The host skips files it cannot read; name each one, so none goes unnoticed.
    const { definitions, unreadable } = await withDefinitions(cli, async (host, root) => ({
      definitions: await host.listDefined(filter),
      unreadable: root === undefined ? [] : (await unreadableDefinitions(root)).filter((bad) => concerns(root, bad.path, filter)),
    }));
    if (dumpjson) cli.output.out((await jsonWriter()).definedListJson(definitions, { uuidFilter: uuid !== undefined }));
    else printDefinitions(cli.output, definitions, verbose);
    for (const bad of unreadable) cli.output.err(`vgpu: unreadable definition ${bad.message.includes(bad.path) ? bad.message : `${bad.path}: ${bad.message}`}`);
    return unreadable.length === 0 ? 0 : 1;
  }
  const devices = await withLiveHost(cli, (host) => host.list(filter));
  if (dumpjson) cli.output.out((await jsonWriter()).liveListJson(devices, { uuidFilter: uuid !== undefined }));
  else printDevices(cli.output, devices, verbose);
  return 0;
}

/** mdevctl's JSON, loaded only for --dumpjson: the lines need no JSON writer (nor the name checks it imports). */
function jsonWriter(): Promise<typeof import('../../host/mdevctl-json.js')> {
  return import('../../host/mdevctl-json.js');
}

type Out = Output;

/**
 * Whether an unreadable file at `path` (<root>/<parent>/<uuid>, or a bad parent folder) may
 * be one the filter asks for: `list -d -u X` fails for X's file, not for unrelated ones.
 */
function concerns(root: string, path: string, filter: { uuid?: string; parent?: string }): boolean {
  const [parent, uuid] = relative(root, path).split(sep);
  if (filter.parent !== undefined && parent !== filter.parent) return false;
  return filter.uuid === undefined || uuid === undefined || uuid.toLowerCase() === filter.uuid.toLowerCase();
}

function printDefinitions(output: Out, definitions: Definition[], verbose: boolean): void {
  const rows: Cell[][] = definitions.map((d) => [d.uuid, d.parent, { text: d.type, style: 'cyan' }, d.start]);
  rows.forEach((row, i) => {
    output.out(spaced(output, row));
    if (verbose) printAttrs(output, (definitions[i] as Definition).attrs);
  });
}

function printDevices(output: Out, devices: LiveDevice[], verbose: boolean): void {
  const rows: Cell[][] = devices.map((d) => [d.uuid, d.parent, { text: d.type, style: 'cyan' },
    d.defined ? { text: `${d.defined} (defined)`, style: 'green' } : 'manual']);
  rows.forEach((row, i) => {
    output.out(spaced(output, row));
    const device = devices[i] as LiveDevice;
    if (!verbose) return;
    output.out(`  group ${device.group} (/dev/vfio/${device.group}), ${device.open ? 'open' : 'not open'}`);
    if (device.vfioUser) output.out(`  vfio-user ${device.vfioUser.socket}${device.vfioUser.attached ? ' (a client is attached)' : ''}`);
  });
}

/** mdevctl's -v attribute lines: `@{0}: {"name":"value"}`. */
function printAttrs(output: Out, attrs: DefinitionAttr[]): void {
  if (attrs.length === 0) return;
  output.out('  Attrs:');
  attrs.forEach((a, i) => output.out(`    @{${i}}: ${JSON.stringify({ [a.name]: a.value })}`));
}
