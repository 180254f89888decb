// The migration state machine against the paths drivers/vfio/vfio_main.c's comment on
// vfio_mig_get_next_state lists for a device with every optional state (written out
// here from that comment, not from the table the code uses), plus the reduced machines.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import { migPath, migStateNames, nextMigState, stateSupported, walkMigState, type MigState } from '../../src/device/migration/states.js';
import { migrationFlags as MF } from '../../src/uapi/migration.js';

const ALL = MF.VFIO_MIGRATION_STOP_COPY | MF.VFIO_MIGRATION_P2P | MF.VFIO_MIGRATION_PRE_COPY;
const state = (name: string): MigState => {
  const i = migStateNames.indexOf(name);
  assert.ok(i >= 0, name);
  return i as MigState;
};

// "The coding will step through multiple states for some combination transitions".
const combinations = `
PRE_COPY -> PRE_COPY_P2P -> STOP_COPY
PRE_COPY -> RUNNING -> RUNNING_P2P
PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP
PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP -> RESUMING
PRE_COPY_P2P -> RUNNING_P2P -> RUNNING
PRE_COPY_P2P -> RUNNING_P2P -> STOP
PRE_COPY_P2P -> RUNNING_P2P -> STOP -> RESUMING
RESUMING -> STOP -> RUNNING_P2P
RESUMING -> STOP -> RUNNING_P2P -> PRE_COPY_P2P
RESUMING -> STOP -> RUNNING_P2P -> RUNNING
RESUMING -> STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY
RESUMING -> STOP -> STOP_COPY
RUNNING -> RUNNING_P2P -> PRE_COPY_P2P
RUNNING -> RUNNING_P2P -> STOP
RUNNING -> RUNNING_P2P -> STOP -> RESUMING
RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY
RUNNING_P2P -> RUNNING -> PRE_COPY
RUNNING_P2P -> STOP -> RESUMING
RUNNING_P2P -> STOP -> STOP_COPY
STOP -> RUNNING_P2P -> PRE_COPY_P2P
STOP -> RUNNING_P2P -> RUNNING
STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY
STOP_COPY -> STOP -> RESUMING
STOP_COPY -> STOP -> RUNNING_P2P
STOP_COPY -> STOP -> RUNNING_P2P -> RUNNING`;

// The arcs a driver with every optional state implements (one step each).
const direct = `RESUMING STOP|STOP RESUMING|STOP STOP_COPY|STOP_COPY STOP|RUNNING RUNNING_P2P|RUNNING_P2P RUNNING|
RUNNING_P2P STOP|STOP RUNNING_P2P|PRE_COPY RUNNING|PRE_COPY PRE_COPY_P2P|PRE_COPY_P2P PRE_COPY|PRE_COPY_P2P RUNNING_P2P|
PRE_COPY_P2P STOP_COPY|RUNNING PRE_COPY|RUNNING_P2P PRE_COPY_P2P`;

function expectedPaths(): Map<string, string[]> {
  const paths = new Map<string, string[]>();
  for (const line of combinations.trim().split('\n')) {
    const names = line.split(' -> ').map((s) => s.trim());
    paths.set(`${names[0]} ${names.at(-1)}`, names.slice(1));
  }
  for (const pair of direct.replace(/\n/g, '').split('|')) {
    const [from, to] = pair.trim().split(' ');
    paths.set(`${from} ${to}`, [to!]);
  }
  return paths;
}

const REAL = migStateNames.filter((n) => n !== 'ERROR');

describe('migration state machine (vfio_mig_get_next_state)', () => {
  it('with STOP_COPY | P2P | PRE_COPY: every pair of states takes the kernel comment\'s path, or is blocked', () => {
    const expected = expectedPaths();
    let checked = 0;
    for (const from of REAL) {
      for (const to of REAL) {
        if (from === to) {
          assert.deepEqual(migPath(state(from), state(to), ALL), []);
          continue;
        }
        const key = `${from} ${to}`;
        if (key === 'STOP_COPY PRE_COPY' || key === 'STOP_COPY PRE_COPY_P2P') {
          assert.throws(() => nextMigState(state(from), state(to), ALL), (e) => isSysError(e, 'EINVAL'), key);
          continue;
        }
        const want = expected.get(key);
        assert.ok(want, `the comment lists no path for ${key}`);
        assert.deepEqual(migPath(state(from), state(to), ALL).map((s) => migStateNames[s]), want, key);
        checked++;
      }
    }
    assert.equal(checked, 7 * 6 - 2);
  });

  it('STOP_COPY only: RUNNING <-> STOP are single arcs; P2P and PRE_COPY states are refused', () => {
    const F = MF.VFIO_MIGRATION_STOP_COPY;
    assert.deepEqual(migPath(state('RUNNING'), state('STOP'), F), [state('STOP')]);
    assert.deepEqual(migPath(state('STOP'), state('RUNNING'), F), [state('RUNNING')]);
    assert.deepEqual(migPath(state('RUNNING'), state('STOP_COPY'), F), [state('STOP'), state('STOP_COPY')]);
    assert.deepEqual(migPath(state('RESUMING'), state('RUNNING'), F), [state('STOP'), state('RUNNING')]);
    for (const bad of ['RUNNING_P2P', 'PRE_COPY', 'PRE_COPY_P2P', 'ERROR']) {
      assert.throws(() => nextMigState(state('RUNNING'), state(bad), F), (e) => isSysError(e, 'EINVAL'), bad);
    }
  });

  it('STOP_COPY | PRE_COPY: PRE_COPY -> STOP_COPY is direct, RUNNING -> STOP skips the P2P state', () => {
    const F = MF.VFIO_MIGRATION_STOP_COPY | MF.VFIO_MIGRATION_PRE_COPY;
    assert.deepEqual(migPath(state('PRE_COPY'), state('STOP_COPY'), F), [state('STOP_COPY')]);
    assert.deepEqual(migPath(state('PRE_COPY'), state('STOP'), F), [state('RUNNING'), state('STOP')]);
    assert.equal(stateSupported(state('PRE_COPY_P2P'), F), false);
  });

  it('ERROR is never a target nor a way out; unknown numbers are EINVAL', () => {
    for (const to of [0, 8, 9, 0xffff_ffff]) {
      assert.throws(() => nextMigState(state('RUNNING'), to, ALL), (e) => isSysError(e, 'EINVAL'), String(to));
    }
    assert.throws(() => nextMigState(state('ERROR'), state('RUNNING'), ALL), (e) => isSysError(e, 'EINVAL'));
  });

  it('walkMigState calls each arc in order and stops where a step fails', () => {
    const arcs: string[] = [];
    let at = state('RUNNING');
    walkMigState(at, state('STOP_COPY'), ALL, (from, to) => { arcs.push(`${migStateNames[from]}>${migStateNames[to]}`); return undefined; }, (s) => { at = s; });
    assert.deepEqual(arcs, ['RUNNING>RUNNING_P2P', 'RUNNING_P2P>STOP', 'STOP>STOP_COPY']);
    assert.equal(at, state('STOP_COPY'));
    at = state('RUNNING');
    assert.throws(() => walkMigState(at, state('STOP'), ALL, (_f, to) => { if (to === state('STOP')) throw new Error('quiesce failed'); return undefined; }, (s) => { at = s; }), /quiesce failed/);
    assert.equal(at, state('RUNNING_P2P'));
  });
});
