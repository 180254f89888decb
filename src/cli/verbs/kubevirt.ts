// `vgpu kubevirt [--resource-domain D] [--json]`: the KubeVirt configuration for this
// host's vGPU types, to go with `vgpu serve --device-plugin` (see README).
import { flag, stringValue, type Parsed } from '../args.js';
import { withLiveHost, type Cli } from '../context.js';
import { kubevirtYaml, permittedMediatedDevices } from '../../host/cluster/kubevirt.js';
import { DEFAULT_RESOURCE_DOMAIN, validateResourceDomain } from '../../host/cluster/names.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const domain = validateResourceDomain(stringValue(values, 'resource-domain') ?? DEFAULT_RESOURCE_DOMAIN);
  const types = await withLiveHost(cli, (host) => host.types());
  const devices = permittedMediatedDevices(types, domain);
  if (flag(values, 'json')) {
    // A merge patch: kubectl patch kubevirt kubevirt -n kubevirt --type merge -p "$(vgpu kubevirt --json)"
    cli.output.out(JSON.stringify({ spec: { configuration: { permittedHostDevices: { mediatedDevices: devices } } } }, null, 2));
    return 0;
  }
  cli.output.out(`# KubeVirt configuration for ${devices.length} vGPU type${devices.length === 1 ? '' : 's'} served by \`vgpu serve --device-plugin\``);
  cli.output.out('# KubeVirt must not create or remove the vGPUs itself: no mediated device types, and');
  cli.output.out('# mediatedDevicesConfiguration.enabled: false (the DisableMDEVConfiguration feature gate on older releases)');
  for (const line of kubevirtYaml(devices)) cli.output.out(line);
  return 0;
}
