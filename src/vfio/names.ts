// Human names for vfio-pci region and interrupt indexes, and sizes, for inspect output
// and error details.

const regionNames = ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA'];
const irqNames = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];

/** BAR0..BAR5, ROM, CONFIG, VGA for a PCI device; "region N" otherwise and past VGA. */
export function regionName(index: number, pci = true): string {
  return (pci ? regionNames[index] : undefined) ?? `region ${index}`;
}

export function irqName(index: number, pci = true): string {
  return (pci ? irqNames[index] : undefined) ?? `irq ${index}`;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1048576 -> "1 MiB", 256 -> "256 B", 1536 -> "1.5 KiB". */
export function formatSize(bytes: number | bigint): string {
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1).replace(/\.?0+$/, '');
  return `${text} ${units[unit]}`;
}

export function hex(value: number | bigint, digits = 0): string {
  return `0x${value.toString(16).padStart(digits, '0')}`;
}
