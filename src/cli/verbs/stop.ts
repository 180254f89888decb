// `vgpu stop -u UUID`: stops and removes a live vGPU (its definition stays).
import { flag, requireOption, type Parsed } from '../args.js';
import { withDaemon, type Cli } from '../context.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const uuid = requireOption('stop', values, 'uuid', ' UUID');
  const force = flag(values, 'force');
  await withDaemon(cli, (host) => (force ? host.stop(uuid, { force }) : host.stop(uuid)));
  return 0;
}
