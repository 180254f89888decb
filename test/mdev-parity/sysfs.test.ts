// The mdev sysfs ABI held against Linux: create and remove as users write them, what
// each attribute and link of a type and of a device reads, available_instances before
// and after, a full type. The same cases run on the mock kernel's mdev bus and on the
// real one (the samples mtty, mdpy, mbochs in the guest); outcomes are recorded for the
// parity (VGPU_CONFORMANCE_OUT). Rules from drivers/vfio/mdev/mdev_sysfs.c
// (create_store: 36 or 37 bytes, guid_parse() of the first 36; remove_store: kstrtoul)
// and mdev_core.c (mdev_device_create: duplicate EEXIST before any capacity check),
// the same in 6.1 and 6.12. Observed values are what both sides can share: errnos,
// counts relative to before, whether links lead where the ABI says, never a name or a
// number only one implementation has.
import { describe } from 'node:test';
import { fails, ok, type Outcome } from '../conformance/outcome.js';
import { conformanceCase } from '../conformance/outcome.js';
import { CORE_DEVICE_ENTRIES, CORE_TYPE_ENTRIES, isLink, linkTarget, read, SubjectPaths, write } from './sysfs-observe.js';
import { setupMdevFile, uuidFor, type Subject } from './target.js';

const t = setupMdevFile();
const SUITE = 1;

function suiteFor(subject: Subject): void {
  const p = new SubjectPaths(t.sys, subject);
  const sys = t.sys;
  const name = (what: string): string => `mdev sysfs ${subject.key}: ${what}`;
  let next = 0;
  const fresh = (): string => uuidFor(subject, SUITE, ++next);

  /** Runs `body` with the devices it names removed afterwards, whatever happens. */
  const withCleanup = <T>(uuids: string[], body: () => T): T => {
    try {
      return body();
    } finally {
      for (const u of uuids) p.removeIfPresent(u.toLowerCase());
    }
  };

  /** A create's outcome with what it changed: listed devices and available_instances. */
  const createObserved = (value: string, uuid: string): { write: Outcome; listed: string[]; delta: number } =>
    withCleanup([uuid], () => {
      const before = p.available();
      const w = p.create(value);
      return { write: w, listed: p.devices(), delta: before - p.available() };
    });

  // ---- the parent and the type, before any create ----

  conformanceCase(t, name('parent: the class link is relative and leads to a directory with mdev_supported_types'), { relative: true, types: true }, () => ({
    relative: !sys.sysfs.readlink(p.classLink).startsWith('/'),
    types: sys.sysfs.list(p.parentDir).includes('mdev_supported_types'),
  }));

  conformanceCase(t, name('type: the core attributes present'), CORE_TYPE_ENTRIES.filter((e) => e !== 'description' || subject.description), () =>
    sys.sysfs.list(p.typeDir()).filter((e) => CORE_TYPE_ENTRIES.includes(e)),
  subject.key === 'mtty' ? { versionDependent: 'driver-specific: description exists only when the driver has show_description (mtty has none; our types all have one)' } : {});

  conformanceCase(t, name('type: name is one non-empty line'), { nonEmpty: true, oneLine: true }, () => {
    const r = read(sys, `${p.typeDir()}/name`);
    if (!('text' in r)) return r;
    return { nonEmpty: r.text.length > 0, oneLine: !r.text.includes('\n') };
  });

  conformanceCase<ReturnType<typeof read>>(t, name('type: device_api'), { text: 'vfio-pci' }, () => read(sys, `${p.typeDir()}/device_api`));

  conformanceCase(t, name('type: available_instances is a decimal number above 0'), { decimal: true, positive: true }, () => {
    const r = read(sys, `${p.typeDir()}/available_instances`);
    if (!('text' in r)) return r;
    return { decimal: /^\d+$/.test(r.text), positive: Number(r.text) > 0 };
  });

  conformanceCase(t, name('type: devices/ is an empty directory'), [], () => p.devices());

  conformanceCase<ReturnType<typeof read>>(t, name('type: create is write-only (read EACCES)'), { errno: 'EACCES' }, () => read(sys, `${p.typeDir()}/create`));

  conformanceCase(t, name('type: name, device_api, available_instances are read-only (write EACCES)'),
    [fails('EACCES'), fails('EACCES'), fails('EACCES')],
    () => ['name', 'device_api', 'available_instances'].map((a) => write(sys, `${p.typeDir()}/${a}`, '1')));

  conformanceCase(t, name('type: devices/ written or read as a file (EISDIR)'), [fails('EISDIR'), fails('EISDIR')], () => [
    write(sys, `${p.typeDir()}/devices`, '1'),
    read(sys, `${p.typeDir()}/devices`),
  ]);

  conformanceCase(t, name('type: an attribute that does not exist (ENOENT)'), [fails('ENOENT'), fails('ENOENT')], () => [
    read(sys, `${p.typeDir()}/no_such_attribute`),
    write(sys, `${p.typeDir()}/no_such_attribute`, '1'),
  ]);

  conformanceCase(t, name('type: the type directory is not a link; the class link is'), { typeIsLink: false, classIsLink: true }, () => ({
    typeIsLink: isLink(sys, p.realTypeDir()),
    classIsLink: isLink(sys, p.classLink),
  }));

  // ---- create: what the kernel takes as a UUID ----

  const goodCreate = (uuid: string) => ({ write: ok(), listed: [uuid], delta: 1 });
  const refused = (errno: string) => ({ write: fails(errno), listed: [], delta: 0 });

  conformanceCase(t, name('create: a lower-case UUID and a newline'), goodCreate(uuidFor(subject, SUITE, 101)), () => {
    const u = uuidFor(subject, SUITE, 101);
    return createObserved(`${u}\n`, u);
  });

  conformanceCase(t, name('create: a UUID without a newline'), goodCreate(uuidFor(subject, SUITE, 102)), () => {
    const u = uuidFor(subject, SUITE, 102);
    return createObserved(u, u);
  });

  conformanceCase(t, name('create: an upper-case UUID is listed in lower case'), { ...goodCreate(uuidFor(subject, SUITE, 0xabc)), upperPath: false },
    () => {
      const u = uuidFor(subject, SUITE, 0xabc);
      return withCleanup([u], () => {
        const before = p.available();
        const w = p.create(`${u.toUpperCase()}\n`);
        return { write: w, listed: p.devices(), delta: before - p.available(), upperPath: sys.sysfs.exists(p.busLink(u.toUpperCase())) };
      });
    });

  conformanceCase(t, name('create: a UUID and a trailing space (the 37th byte is not looked at)'), goodCreate(uuidFor(subject, SUITE, 103)), () => {
    const u = uuidFor(subject, SUITE, 103);
    return createObserved(`${u} `, u);
  });

  conformanceCase(t, name('create: a UUID and any 37th byte ("x")'), goodCreate(uuidFor(subject, SUITE, 104)), () => {
    const u = uuidFor(subject, SUITE, 104);
    return createObserved(`${u}x`, u);
  });

  const badInputs: [string, (u: string) => string][] = [
    ['a leading space', (u) => ` ${u}`],
    ['a leading space and a newline (38 bytes)', (u) => ` ${u}\n`],
    ['a trailing space and a newline (38 bytes)', (u) => `${u} \n`],
    ['two newlines (38 bytes)', (u) => `${u}\n\n`],
    ['a leading tab', (u) => `\t${u}`],
    ['35 characters (too short)', (u) => u.slice(0, 35)],
    ['35 characters and a newline', (u) => `${u.slice(0, 35)}\n`],
    ['the UUID and 40 more characters (too long)', (u) => `${u}${'0'.repeat(40)}`],
    ['in braces', (u) => `{${u}}`],
    ['32 hex digits without hyphens', (u) => u.replace(/-/g, '')],
    ['hyphens moved (36 characters)', (u) => `${u.slice(0, 7)}-${u.slice(7, 8)}${u.slice(9)}`],
    ['a non-hex digit', (u) => `g${u.slice(1)}`],
    ['colons for hyphens', (u) => u.replace(/-/g, ':')],
    ['"bogus"', () => 'bogus'],
    ['a newline alone', () => '\n'],
  ];
  badInputs.forEach(([what, make], i) => {
    conformanceCase(t, name(`create: ${what} (EINVAL)`), refused('EINVAL'), () => {
      const u = uuidFor(subject, SUITE, 200 + i);
      return createObserved(make(u), u);
    });
  });

  conformanceCase(t, name('create: an empty write does nothing'), { write: ok(), listed: [], delta: 0 }, () => {
    const before = p.available();
    const w = p.create('');
    return { write: w, listed: p.devices(), delta: before - p.available() };
  });

  // ---- duplicates ----

  conformanceCase(t, name('create: the same UUID twice (EEXIST), in either case, on either type'),
    { first: ok(), again: fails('EEXIST'), upper: fails('EEXIST'), otherType: fails('EEXIST'), delta: 1, listed: 1 },
    () => {
      const u = fresh();
      return withCleanup([u], () => {
        const before = p.available();
        const first = p.create(u);
        const again = p.create(`${u}\n`);
        const upper = p.create(u.toUpperCase());
        const otherType = p.create(u, subject.otherType);
        return { first, again, upper, otherType, delta: before - p.available(), listed: p.devices().length };
      });
    });

  conformanceCase(t, name('create: a UUID in use on another parent (EEXIST: one list for every parent)'), { here: fails('EEXIST'), listed: [] }, () => {
    const other = t.subjects.find((s) => s.key !== subject.key);
    if (!other) throw new Error('the suite needs a second parent');
    const elsewhere = new SubjectPaths(sys, other);
    const u = fresh();
    return withCleanup([u], () => {
      elsewhere.create(u);
      return { here: p.create(u), listed: p.devices() };
    });
  });

  conformanceCase(t, name('available_instances: another type of the parent narrows after a create'), { narrowed: true, restored: true }, () => {
    const u = fresh();
    return withCleanup([u], () => {
      const before = p.available(subject.otherType);
      p.create(u);
      const during = p.available(subject.otherType);
      sys.sysfs.write(`${p.busLink(u)}/remove`, '1');
      return { narrowed: during < before, restored: p.available(subject.otherType) === before };
    });
  });

  // ---- a device's attributes and links ----

  conformanceCase(t, name('device: the core entries present'), CORE_DEVICE_ENTRIES, () => {
    const u = fresh();
    return withCleanup([u], () => {
      p.create(u);
      return sys.sysfs.list(linkTarget(sys, p.busLink(u))).filter((e) => CORE_DEVICE_ENTRIES.includes(e));
    });
  });

  conformanceCase(t, name('device: the links lead where the ABI says'), {
    busLinkRelative: true, busLinkToParentChild: true, typeDevicesLink: true, mdevType: true, sameTypeName: true,
    iommuGroup: true, groupListsDevice: true,
  }, () => {
    const u = fresh();
    return withCleanup([u], () => {
      p.create(u);
      const dir = linkTarget(sys, p.busLink(u));
      const group = linkTarget(sys, `${dir}/iommu_group`);
      return {
        busLinkRelative: !sys.sysfs.readlink(p.busLink(u)).startsWith('/'),
        busLinkToParentChild: dir === `${p.parentDir}/${u}`,
        typeDevicesLink: linkTarget(sys, `${p.realTypeDir()}/devices/${u}`) === dir,
        mdevType: linkTarget(sys, `${dir}/mdev_type`) === p.realTypeDir(),
        sameTypeName: sys.sysfs.read(`${dir}/mdev_type/name`) === sys.sysfs.read(`${p.typeDir()}/name`),
        iommuGroup: /^\/sys\/kernel\/iommu_groups\/\d+$/.test(group),
        groupListsDevice: sys.sysfs.list(`${group}/devices`).includes(u),
      };
    });
  });

  conformanceCase(t, name('device: its group is a /dev/vfio node of its own, which goes with it'),
    { open: { ret: 'fd' }, sharedWithOther: false, afterRemove: fails('ENOENT') }, () => {
      const [a, b] = [fresh(), fresh()];
      return withCleanup([a, b], () => {
        p.create(a);
        p.create(b);
        const groupOf = (u: string): string => linkTarget(sys, `${p.busLink(u)}/iommu_group`).split('/').pop()!;
        const node = `/dev/vfio/${groupOf(a)}`;
        const open: Outcome = (() => {
          try {
            sys.close(sys.open(node));
            return { ret: 'fd' as const };
          } catch (err) {
            return fails((err as { code?: string }).code ?? String(err));
          }
        })();
        const sharedWithOther = groupOf(a) === groupOf(b);
        sys.sysfs.write(`${p.busLink(a)}/remove`, '1');
        let afterRemove: Outcome;
        try {
          sys.close(sys.open(node));
          afterRemove = { ret: 'fd' };
        } catch (err) {
          afterRemove = fails((err as { code?: string }).code ?? String(err));
        }
        return { open, sharedWithOther, afterRemove };
      });
    });

  conformanceCase<ReturnType<typeof read>>(t, name('device: remove is write-only (read EACCES)'), { errno: 'EACCES' }, () => {
    const u = fresh();
    return withCleanup([u], () => {
      p.create(u);
      return read(sys, `${p.busLink(u)}/remove`);
    });
  });

  conformanceCase(t, name('device: the driver core\'s driver and subsystem links and uevent'), {
    driverOnBus: true, driverListsDevice: true, subsystem: true, uevent: true, ueventChange: ok(), ueventBogus: fails('EINVAL'),
  }, () => {
    const u = fresh();
    return withCleanup([u], () => {
      p.create(u);
      const dir = linkTarget(sys, p.busLink(u));
      const driver = linkTarget(sys, `${dir}/driver`);
      return {
        driverOnBus: /^\/sys\/bus\/mdev\/drivers\/[^/]+$/.test(driver),
        driverListsDevice: sys.sysfs.list(driver).includes(u),
        subsystem: linkTarget(sys, `${dir}/subsystem`) === '/sys/bus/mdev',
        uevent: sys.sysfs.read(`${dir}/uevent`) === `DRIVER=${driver.split('/').pop()!}`,
        ueventChange: write(sys, `${dir}/uevent`, 'change'),
        ueventBogus: write(sys, `${dir}/uevent`, 'bogus'),
      };
    });
  });

  // Seen on 6.1 and 6.12: power/ (the driver core), vendor/ (the sample's group), vfio-dev/ (vfio's device class).
  const ENTRIES_SEEN = ['driver', 'subsystem', 'uevent'];
  conformanceCase(t, name('device: the entries beyond the core ones and the driver core\'s links'),
    t.kind === 'mock' ? [] : ['power', 'vendor', 'vfio-dev'], () => {
      const u = fresh();
      return withCleanup([u], () => {
        p.create(u);
        return sys.sysfs.list(linkTarget(sys, p.busLink(u))).filter((e) => !CORE_DEVICE_ENTRIES.includes(e) && !ENTRIES_SEEN.includes(e));
      });
    }, { versionDependent: 'not modelled: a real mdev has power/ (runtime PM attributes) and vfio-dev/ (its vfio class device), and the samples add a vendor/ group of their own; the mock presents the mdev ABI and the driver core\'s driver, subsystem and uevent' });

  // ---- remove ----

  const removeCase = (what: string, value: string, expected: { write: Outcome; present: boolean }): void => {
    conformanceCase(t, name(`remove: ${what}`), { ...expected, delta: expected.present ? 0 : 1 }, () => {
      const u = fresh();
      return withCleanup([u], () => {
        p.create(u);
        const before = p.available();
        const w = write(sys, `${p.busLink(u)}/remove`, value);
        return { write: w, present: p.exists(u), delta: p.available() - before };
      });
    });
  };
  removeCase('"1" and a newline removes', '1\n', { write: ok(), present: false });
  removeCase('"1" without a newline removes', '1', { write: ok(), present: false });
  removeCase('any other number removes ("0x10")', '0x10', { write: ok(), present: false });
  removeCase('"0" does nothing', '0', { write: ok(), present: true });
  removeCase('"0" and a newline does nothing', '0\n', { write: ok(), present: true });
  removeCase('an empty write does nothing', '', { write: ok(), present: true });
  removeCase('garbage (EINVAL)', 'garbage', { write: fails('EINVAL'), present: true });
  removeCase('"-1" (EINVAL)', '-1', { write: fails('EINVAL'), present: true });
  removeCase('" 1", a leading space (EINVAL)', ' 1', { write: fails('EINVAL'), present: true });
  removeCase('"1 ", a trailing space (EINVAL)', '1 ', { write: fails('EINVAL'), present: true });
  removeCase('2^64, out of range (EINVAL)', '18446744073709551616', { write: fails('EINVAL'), present: true });

  conformanceCase(t, name('remove: what is gone afterwards'), {
    busLink: false, typeDevices: [], removeAgain: fails('ENOENT'), dir: false,
  }, () => {
    const u = fresh();
    return withCleanup([u], () => {
      p.create(u);
      const dir = linkTarget(sys, p.busLink(u));
      sys.sysfs.write(`${p.busLink(u)}/remove`, '1');
      return {
        busLink: sys.sysfs.exists(p.busLink(u)),
        typeDevices: p.devices(),
        removeAgain: write(sys, `${dir}/remove`, '1'),
        dir: sys.sysfs.exists(dir),
      };
    });
  });

  // ---- a full type ----

  conformanceCase(t, name('create: on a full type'), {
    filled: true, availableWhenFull: 0, next: fails(subject.fullErrno), duplicate: fails('EEXIST'), nextListed: false,
    afterOneRemoved: 1, createAgain: ok(),
  }, () => {
    const made: string[] = [];
    const spare = fresh();
    return withCleanup([spare], () => withCleanup(made, () => {
      const n = p.available();
      for (let i = 0; i < n; i++) {
        const u = fresh();
        made.push(u);
        p.create(u);
      }
      const filled = p.devices().length === n;
      const availableWhenFull = p.available();
      const next = p.create(spare);
      const duplicate = p.create(made[0]!);
      const nextListed = p.exists(spare);
      sys.sysfs.write(`${p.busLink(made[0]!)}/remove`, '1');
      const afterOneRemoved = p.available();
      const createAgain = p.create(made[0]!);
      return { filled, availableWhenFull, next, duplicate, nextListed, afterOneRemoved, createAgain };
    }));
  }, { versionDependent: `driver-specific: with get_available (mtty, mbochs) the driver's probe refuses (ENOSPC); without it (mdpy) mdev_device_create does (EUSERS); our vendors are of the get_available kind (ENOSPC)` });
}

if (t.subjects.length === 0) {
  describe('mdev sysfs parity', { skip: 'no mdev sample parent on this kernel (load mtty, mdpy, mbochs)' }, () => {});
}
for (const subject of t.subjects) describe(`mdev sysfs: ${subject.key} (${subject.parent}/${subject.type})`, () => suiteFor(subject));
