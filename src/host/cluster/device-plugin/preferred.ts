// GetPreferredAllocation: which of the free vGPUs of a type a container should get.
// vGPUs are packed by parent: the must-include ones first, then the parents they are
// on, then the parents with the most free vGPUs, so that a request spans as few boards
// as it can and leaves other boards whole for larger requests.
export interface PreferredRequest {
  available: string[];
  mustInclude: string[];
  size: number;
}

/** The chosen IDs, or an Error saying why the request cannot be met. */
export function preferredAllocation(request: PreferredRequest, parentOf: (id: string) => string | undefined): string[] | Error {
  const { available, mustInclude, size } = request;
  if (!Number.isInteger(size) || size < 0) return new Error(`allocation_size ${size} is not a count`);
  const free = [...new Set(available)];
  const must = [...new Set(mustInclude)];
  for (const id of must) {
    if (!free.includes(id)) return new Error(`must-include device ${id} is not among the available devices`);
  }
  if (must.length > size) return new Error(`${must.length} must-include devices do not fit an allocation of ${size}`);
  if (free.length < size) return new Error(`${size} devices asked for, ${free.length} available`);
  const chosen = [...must];
  const byParent = new Map<string, string[]>();
  for (const id of free) {
    if (chosen.includes(id)) continue;
    const parent = parentOf(id) ?? '';
    let list = byParent.get(parent);
    if (!list) byParent.set(parent, (list = []));
    list.push(id);
  }
  const mustParents = new Set(must.map((id) => parentOf(id) ?? ''));
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  while (chosen.length < size) {
    const remaining = size - chosen.length;
    const left = [...byParent.keys()].filter((p) => byParent.get(p)!.length > 0);
    // The boards the must-include devices are on come first; among the others the
    // smallest that holds the rest (best fit), else the largest, and again.
    const preferred = left.filter((p) => mustParents.has(p));
    const pool = preferred.length > 0 ? preferred : left;
    const fits = pool.filter((p) => byParent.get(p)!.length >= remaining).sort((a, b) => byParent.get(a)!.length - byParent.get(b)!.length || byName(a, b));
    const parent = fits[0] ?? pool.sort((a, b) => byParent.get(b)!.length - byParent.get(a)!.length || byName(a, b))[0]!;
    const ids = byParent.get(parent)!.sort();
    chosen.push(...ids.splice(0, remaining));
  }
  return chosen;
}
