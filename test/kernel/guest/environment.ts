// Runs inside the guest, first: checks what every later phase relies on, so a broken
// image or binding reads as one clear failure instead of a wall of failing suites.
// Not a *.test.ts: it runs only in the guest, never under `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, lstatSync, readlinkSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { addon } from '../../../src/addon/addon.js';
import { ioctls } from '../../../src/uapi/ioctls.js';

const device = process.env.VGPU_TEST_DEVICE ?? '0000:00:04.0';
const sysfs = `/sys/bus/pci/devices/${device}`;

test('the container node /dev/vfio/vfio is a character device', () => {
  assert.ok(lstatSync('/dev/vfio/vfio').isCharacterDevice());
});

test(`${device} is edu (1234:11e8) bound to vfio-pci`, () => {
  assert.equal(readFileSync(`${sysfs}/vendor`, 'utf8').trim(), '0x1234');
  assert.equal(readFileSync(`${sysfs}/device`, 'utf8').trim(), '0x11e8');
  assert.equal(basename(readlinkSync(`${sysfs}/driver`)), 'vfio-pci');
});

test(`${device}'s IOMMU group has its /dev/vfio node`, () => {
  const group = basename(readlinkSync(`${sysfs}/iommu_group`));
  assert.match(group, /^\d+$/);
  assert.ok(lstatSync(`/dev/vfio/${group}`).isCharacterDevice());
});

test('the addon loads and the container answers VFIO_GET_API_VERSION with 0', () => {
  const a = addon();
  const fd = a.open('/dev/vfio/vfio', constants.O_RDWR);
  try {
    assert.equal(a.ioctl(fd, ioctls.VFIO_GET_API_VERSION), 0);
  } finally {
    a.close(fd);
  }
});
