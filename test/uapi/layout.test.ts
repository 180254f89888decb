// src/uapi against <linux/vfio.h> as the C compiler sees it (the addon's `vfio` table):
// every ioctl number, constant and struct layout, name by name. A name TypeScript
// declares that the addon does not know fails too, so nothing goes unchecked.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { ioctls } from '../../src/uapi/ioctls.js';
import { VFIO_API_VERSION, capIds, extensions, flags, pciIrq, pciRegion, regionTypes } from '../../src/uapi/constants.js';
import { allStructs } from '../../src/uapi/structs.js';

const table = addon().vfio;

function compare(group: string, ours: Readonly<Record<string, number>>, theirs: Readonly<Record<string, number>>): void {
  const missing = Object.keys(ours).filter((name) => !(name in theirs));
  assert.deepEqual(missing, [], `${group}: names the addon does not export`);
  const wrong = Object.entries(ours)
    .filter(([name, value]) => theirs[name] !== value)
    .map(([name, value]) => `${name}: ts ${value}, C ${theirs[name]}`);
  assert.deepEqual(wrong, [], `${group}: values that differ from <linux/vfio.h>`);
}

describe('src/uapi matches <linux/vfio.h>', () => {
  it('ioctl numbers', () => {
    assert.equal(Object.keys(ioctls).length, 24);
    compare('ioctls', ioctls, table.ioctls);
  });

  const constantGroups = { extensions, flags, pciRegion, pciIrq, capIds, regionTypes, VFIO_API_VERSION: { VFIO_API_VERSION } };
  for (const [group, values] of Object.entries(constantGroups)) {
    it(`constants: ${group}`, () => {
      assert.ok(Object.keys(values).length > 0);
      compare(group, values, table.constants);
    });
  }

  it(`struct sizes and field offsets (${allStructs.length} structs)`, () => {
    const problems: string[] = [];
    for (const struct of allStructs) {
      const layout = table.structs[struct.name];
      if (layout === undefined) { problems.push(`${struct.name}: not in the addon`); continue; }
      if (layout.size !== struct.size) problems.push(`${struct.name}: size ts ${struct.size}, C ${layout.size}`);
      for (const [field, [, offset]] of Object.entries(struct.fields)) {
        const cOffset = layout.fields[field];
        if (cOffset === undefined) problems.push(`${struct.name}.${field}: not in the addon`);
        else if (cOffset !== offset) problems.push(`${struct.name}.${field}: offset ts ${offset}, C ${cOffset}`);
      }
      const unchecked = Object.keys(layout.fields).filter((field) => !(field in struct.fields));
      if (unchecked.length > 0) problems.push(`${struct.name}: C fields the codec lacks: ${unchecked.join(', ')}`);
    }
    assert.deepEqual(problems, []);
  });

  it('the comparison itself catches a wrong value and a missing name', () => {
    assert.throws(() => compare('probe', { VFIO_GET_API_VERSION: ioctls.VFIO_GET_API_VERSION + 1 }, table.ioctls), /values that differ/);
    assert.throws(() => compare('probe', { VFIO_NO_SUCH_IOCTL: 1 }, table.ioctls), /names the addon does not export/);
  });

  it('the addon also has the SPAPR and EEH ioctls of the header', () => {
    for (const name of ['VFIO_IOMMU_SPAPR_TCE_GET_INFO', 'VFIO_EEH_PE_OP', 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY',
      'VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY', 'VFIO_IOMMU_SPAPR_TCE_CREATE', 'VFIO_IOMMU_SPAPR_TCE_REMOVE']) {
      assert.equal(typeof table.ioctls[name], 'number', name);
    }
    assert.equal(table.ioctls.VFIO_EEH_PE_OP, (0x3b << 8) | (100 + 21));
  });
});
