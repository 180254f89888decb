// src/uapi/migration.ts against <linux/vfio.h> as the addon compiled it (the 6.1 header):
// every struct and constant the header has, field by field; PRE_COPY, the precopy info
// and MIG_DATA_SIZE came later (6.2 and 6.3) and are checked against the kernel's
// documented layout instead.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import {
  VFIO_MIG_GET_PRECOPY_INFO, deviceFeature, migrationFlags, migrationStructs, migStates, vfio_device_feature_mig_data_size, vfio_precopy_info,
} from '../../src/uapi/migration.js';

const table = addon().vfio;
const newer = new Set(['vfio_precopy_info', 'vfio_device_feature_mig_data_size']);

test('migration structs match the header\'s sizes and offsets', () => {
  const problems: string[] = [];
  for (const struct of migrationStructs) {
    if (newer.has(struct.name)) continue;
    const layout = table.structs[struct.name];
    if (!layout) { problems.push(`${struct.name}: not in the addon`); continue; }
    if (layout.size !== struct.size) problems.push(`${struct.name}: size ts ${struct.size}, C ${layout.size}`);
    for (const [field, [, offset]] of Object.entries(struct.fields)) {
      if (layout.fields[field] !== offset) problems.push(`${struct.name}.${field}: ts ${offset}, C ${layout.fields[field]}`);
    }
    const unchecked = Object.keys(layout.fields).filter((f) => !(f in struct.fields));
    if (unchecked.length) problems.push(`${struct.name}: C fields the codec lacks: ${unchecked.join(', ')}`);
  }
  assert.deepEqual(problems, []);
});

test('migration constants match the header where it has them', () => {
  const c = table.constants;
  for (const [name, value] of Object.entries({ ...migStates, ...deviceFeature, ...migrationFlags })) {
    if (name === 'VFIO_MIGRATION_PRE_COPY' || name === 'VFIO_DEVICE_STATE_PRE_COPY' || name === 'VFIO_DEVICE_STATE_PRE_COPY_P2P' ||
      name === 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE') continue;
    assert.equal(c[name], value, name);
  }
});

test('the later additions as the 6.12 header lays them out', () => {
  assert.equal(vfio_precopy_info.size, 24);
  assert.deepEqual(Object.values(vfio_precopy_info.fields).map(([, o]) => o), [0, 4, 8, 16]);
  assert.equal(vfio_device_feature_mig_data_size.size, 8);
  assert.equal(VFIO_MIG_GET_PRECOPY_INFO, table.ioctls['VFIO_EEH_PE_OP'], '_IO(;, 100 + 21), the number EEH_PE_OP also has');
  assert.deepEqual([migrationFlags.VFIO_MIGRATION_PRE_COPY, migStates.VFIO_DEVICE_STATE_PRE_COPY, migStates.VFIO_DEVICE_STATE_PRE_COPY_P2P, deviceFeature.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE], [4, 6, 7, 9]);
});
