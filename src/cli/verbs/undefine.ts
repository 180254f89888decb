// `vgpu undefine -u UUID [-p PARENT]`: removes saved definitions (a live vGPU keeps running).
import { sysError } from '../../addon/errors.js';
import { flag, requireOption, stringValue, type Parsed } from '../args.js';
import { withDefinitions, type Cli } from '../context.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const uuid = requireOption('undefine', values, 'uuid', ' UUID');
  const parent = stringValue(values, 'parent');
  const force = flag(values, 'force');
  const removed = await withDefinitions(cli, (host) => (force ? host.undefine(uuid, parent, { force }) : host.undefine(uuid, parent)));
  if (removed === 0) {
    const err = sysError('ENOENT', 'unlink');
    err.message = `no definition of ${uuid}${parent === undefined ? '' : ` under ${parent}`}`;
    throw err;
  }
  return 0;
}
