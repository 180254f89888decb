// How the fs-backed Sysfs names the errno of a failed write: libuv's 'UNKNOWN' for
// errnos it has no name for (EUSERS from an mdev type without get_available) is named
// by its number, as the kernel returned it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fsErrnoCode } from '../../src/sys/fs-sysfs.js';

test('fs errors: a known code is kept; UNKNOWN is named by its errno number; anything else is no errno', () => {
  assert.equal(fsErrnoCode({ code: 'EEXIST', errno: -17 }), 'EEXIST');
  assert.equal(fsErrnoCode({ code: 'UNKNOWN', errno: -87 }), 'EUSERS');
  assert.equal(fsErrnoCode({ code: 'UNKNOWN', errno: -77 }), 'EBADFD');
  assert.equal(fsErrnoCode({ code: 'UNKNOWN', errno: -100000 }), undefined);
  assert.equal(fsErrnoCode({ code: 'ERR_INVALID_ARG_TYPE' }), undefined);
  assert.equal(fsErrnoCode(new TypeError('x')), undefined);
  assert.equal(fsErrnoCode(undefined), undefined);
});
