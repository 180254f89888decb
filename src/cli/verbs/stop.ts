// `vgpu stop -u UUID`: stops and removes a live vGPU (its definition stays).
import { requireOption, type Parsed } from '../args.js';
import { withDaemon, type Cli } from '../context.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const uuid = requireOption('stop', values, 'uuid', ' UUID');
  await withDaemon(cli, (host) => host.stop(uuid));
  return 0;
}
