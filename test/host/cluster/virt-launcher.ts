// How KubeVirt's virt-launcher reads what a device plugin's Allocate gave the pod: for
// each permitted mediated device resource, the variable MDEV_PCI_RESOURCE_<name
// upper-cased, '/' and '.' as '_'> holds the mdev UUIDs comma-joined; empty entries
// are skipped, and each hostDevice of that resource takes the next UUID in order.
// Written independently of the plugin's own code, so a mistake in one shows in the other.
export function envVarOf(resourceName: string): string {
  return `MDEV_PCI_RESOURCE_${resourceName.toUpperCase().split('/').join('_').split('.').join('_')}`;
}

export function mdevUuidsFor(env: Record<string, string>, resourceName: string): string[] {
  const value = env[envVarOf(resourceName)];
  if (value === undefined) return [];
  return value.split(',').filter((uuid) => uuid !== '');
}

/** The UUID each of a VMI's hostDevices of `resourceName` gets, in order (an error when they run out). */
export function assignHostDevices(env: Record<string, string>, resourceName: string, count: number): string[] {
  const pool = mdevUuidsFor(env, resourceName);
  if (pool.length < count) throw new Error(`virt-launcher: ${count} devices of ${resourceName} wanted, ${pool.length} in ${envVarOf(resourceName)}`);
  return pool.slice(0, count);
}
