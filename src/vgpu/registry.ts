// The vGPU registry: vendor drivers, the parents they claim, the types those parents
// offer and the vGPUs created on them (the kernel's mdev core, minus the kernel). It
// knows no transport: buses (the mock kernel's mdev bus, later a vfio-user server)
// attach and are told of every parent and vGPU; a bus may refuse a vGPU, and the
// registry then undoes everything the create did.
//
// Errors (SysErrors; the registry's calls mirror the sysfs writes, so syscall "write"):
//   create: malformed UUID EINVAL; unknown parent or type ENOENT (what opening the
//     type's `create` file would give); UUID in use on any parent EEXIST; no instance
//     left ENOSPC (what a driver with get_available, as mtty and mbochs, refuses with
//     in its probe; the registry asks before the vendor so that vendors need not); a
//     vendor or bus failure: its SysError,
//     anything else EIO, after a complete rollback (vendor removeVgpu, no trace left).
//   remove: unknown UUID ENODEV; a vGPU still being created or removed EAGAIN (the
//     kernel's !active); open EBUSY (the kernel would block and send REQ: we refuse);
//     a bus refusing (EBUSY: its group is open) leaves the vGPU exactly as it was.
//     When the vendor's removeVgpu throws, the vGPU is gone all the same (nothing of it
//     is left in the registry or on a bus) and remove reports the error (EIO or the
//     vendor's SysError): the vendor's own bookkeeping is the vendor's to fix.
// Everything is kept in Maps keyed by UUID or name: no operation scans all vGPUs.
import { isSysError, sysError, type ErrnoCode, type SysError } from '../addon/errors.js';
import { VgpuDevice } from './device/vgpu-device.js';
import { generateUuid, parseUuid } from './uuid.js';
import type { VendorDriver, VgpuModel, VgpuParent, VgpuType } from './vendor.js';

/** The device_api of every type: the core emulates VFIO PCI devices. */
export const DEVICE_API = 'vfio-pci';

/** Attribute names of a type directory that a driver attribute may not take. */
export const CORE_TYPE_ATTRIBUTES: readonly string[] = ['create', 'name', 'description', 'available_instances', 'device_api', 'devices'];

/**
 * A transport that presents parents and vGPUs to users. Calls come in registry order:
 * parentAdded before any of its vGPUs' vgpuAdded, vgpuRemoved before parentRemoved.
 */
export interface VgpuBus {
  /** A parent appeared. Throwing refuses it: addParent is rolled back. */
  parentAdded?(parent: RegisteredParent): void;
  /** A parent (with no vGPUs left) went. Should not throw; an error is reported after. */
  parentRemoved?(parent: RegisteredParent): void;
  /** A vGPU was created. Throwing refuses it: the create is rolled back completely. */
  vgpuAdded(vgpu: Vgpu): void;
  /**
   * A vGPU is going. Throwing (e.g. EBUSY while a user holds its group) refuses it and
   * must leave the bus unchanged; the remove is then abandoned.
   */
  vgpuRemoved(vgpu: Vgpu): void;
}

/** What a vGPU's device tells the registry (the events VgpuDevice takes). */
export interface VgpuOpenEvents {
  /** The first device fd was opened (the proposal's vgpu_start). */
  opened(): void;
  /** The last device fd was closed (vgpu_shutdown). */
  released(): void;
}

export type VgpuState = 'creating' | 'live' | 'removing';

/** A snapshot of a type for listing: the sysfs attributes of mdev_supported_types/<id>. */
export interface VgpuTypeInfo {
  id: string;
  name: string;
  description: string | undefined;
  deviceApi: string;
  availableInstances: number;
  attributes: Record<string, string>;
}

/** A snapshot of a vGPU for listing. */
export interface VgpuInfo {
  uuid: string;
  parent: string;
  type: string;
  open: boolean;
}

/** Names that can be a sysfs path component. */
const COMPONENT = /^[^/\0\s]+$/;

function checkComponent(what: string, name: unknown): string {
  if (typeof name !== 'string' || !COMPONENT.test(name) || name === '.' || name === '..') {
    throw new TypeError(`${what} must be a non-empty name without "/", NUL or blanks, got ${JSON.stringify(name)}`);
  }
  return name;
}

function fail(code: ErrnoCode, operation: string, detail: string): never {
  throw sysError(code, 'write', operation, detail);
}

/** A vendor's or bus's failure as the user sees it: its SysError, anything else EIO. */
function asUserError(err: unknown, syscall: string, operation: string, what: string): SysError {
  if (isSysError(err)) return err;
  const error = sysError('EIO', syscall, operation, `${what}: ${err instanceof Error ? err.message : String(err)}`);
  error.cause = err;
  return error;
}

export class RegisteredType {
  /** `${driver.name}-${type.name}`: the directory name under mdev_supported_types. */
  readonly id: string;

  constructor(readonly parent: RegisteredParent, readonly type: VgpuType) {
    this.id = `${parent.driver.name}-${type.name}`;
  }

  /** The sysfs `name`. */
  get name(): string {
    return this.type.displayName;
  }

  get description(): string | undefined {
    return this.type.description;
  }

  get deviceApi(): string {
    return DEVICE_API;
  }

  get attributes(): Readonly<Record<string, string>> {
    return this.type.attributes ?? {};
  }

  /** available_instances, asked of the vendor now. Its failure: its SysError, else EIO. */
  availableInstances(): number {
    let n: unknown;
    try {
      n = this.parent.parent.availableInstances(this.type);
    } catch (err) {
      throw asUserError(err, 'read', 'available_instances', `${this.parent.name} ${this.id}`);
    }
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      throw sysError('EIO', 'read', 'available_instances', `${this.parent.name} ${this.id} answered ${String(n)}`);
    }
    return n;
  }

  info(): VgpuTypeInfo {
    return {
      id: this.id,
      name: this.name,
      description: this.description,
      deviceApi: this.deviceApi,
      availableInstances: this.availableInstances(),
      attributes: { ...this.attributes },
    };
  }
}

export class RegisteredParent {
  /** Its types by id. */
  readonly types: ReadonlyMap<string, RegisteredType>;
  /** Its vGPUs (every state); only the registry changes it. */
  readonly vgpus = new Set<Vgpu>();

  constructor(readonly driver: VendorDriver, readonly parent: VgpuParent) {
    const types = new Map<string, RegisteredType>();
    for (const type of parent.types) {
      checkComponent('a type name', type?.name);
      if (typeof type.displayName !== 'string') throw new TypeError(`type ${type.name} needs a displayName`);
      for (const name of Object.keys(type.attributes ?? {})) {
        checkComponent('an attribute name', name);
        if (CORE_TYPE_ATTRIBUTES.includes(name)) throw new TypeError(`type ${type.name}: attribute name ${name} is the core's`);
      }
      const registered = new RegisteredType(this, type);
      if (types.has(registered.id)) throw new TypeError(`parent ${parent.name} has two types named ${type.name}`);
      types.set(registered.id, registered);
    }
    this.types = types;
  }

  get name(): string {
    return this.parent.name;
  }

  typeList(): RegisteredType[] {
    return [...this.types.values()];
  }
}

/** A vGPU: its UUID, type and the vendor's model; its open state comes from its device. */
export class Vgpu implements VgpuOpenEvents {
  /** Where it is in its lifecycle; only the registry changes it. */
  state: VgpuState = 'creating';
  private openCount = 0;
  private dev: VgpuDevice | undefined;

  constructor(readonly uuid: string, readonly type: RegisteredType, readonly model: VgpuModel) {}

  /**
   * The vGPU as a VFIO device: one per vGPU, whichever buses present it (the mock
   * kernel's mdev bus, the vfio-user server), so only one user at a time can hold it.
   * Made on first use; a model the core cannot serve throws here (the bus asking
   * refuses the vGPU and the create is rolled back).
   */
  get device(): VgpuDevice {
    return (this.dev ??= new VgpuDevice(this.uuid, this.model, this, { vendor: this.parent.driver.name, type: this.type.id }));
  }

  get parent(): RegisteredParent {
    return this.type.parent;
  }

  /** Open through a device (between its first open and last close). */
  get isOpen(): boolean {
    return this.openCount > 0;
  }

  // Counted, never refused: the device calls these after the vendor's open succeeded
  // and its release ran, so there is nothing left to refuse. The device itself refuses
  // a second holder (EBUSY), so buses sharing it cannot open it twice.
  opened(): void {
    this.openCount++;
  }

  released(): void {
    if (this.openCount > 0) this.openCount--;
  }

  info(): VgpuInfo {
    return { uuid: this.uuid, parent: this.parent.name, type: this.type.id, open: this.isOpen };
  }
}

export class VgpuRegistry {
  private readonly drivers = new Map<string, VendorDriver>();
  private readonly parents = new Map<string, RegisteredParent>();
  private readonly vgpus = new Map<string, Vgpu>();
  /** UUIDs whose vendor createVgpu is running (reserved against duplicates). */
  private readonly reserved = new Set<string>();
  private readonly buses: VgpuBus[] = [];

  // ---- drivers and parents ----

  registerDriver(driver: VendorDriver): void {
    const name = checkComponent('a driver name', driver?.name);
    if (this.drivers.has(name)) fail('EEXIST', 'register driver', `driver ${name} is registered`);
    this.drivers.set(name, driver);
  }

  /** Unregisters a driver after removing its parents (EBUSY if a vGPU of one is open). */
  unregisterDriver(name: string): void {
    const driver = this.drivers.get(name);
    if (!driver) fail('ENODEV', 'unregister driver', `no driver ${name}`);
    const mine = [...this.parents.values()].filter((p) => p.driver === driver);
    for (const parent of mine) this.checkParentIdle(parent);
    for (const parent of mine) this.removeParent(parent.name);
    this.drivers.delete(name);
  }

  /** A driver claims a parent: its types become visible on every bus. */
  addParent(driverName: string, parent: VgpuParent): RegisteredParent {
    const driver = this.drivers.get(driverName);
    if (!driver) fail('ENODEV', 'add parent', `no driver ${driverName}`);
    const name = checkComponent('a parent name', parent?.name);
    if (this.parents.has(name)) fail('EEXIST', 'add parent', `parent ${name} is registered`);
    const registered = new RegisteredParent(driver, parent);
    let told = 0;
    try {
      for (; told < this.buses.length; told++) this.buses[told]!.parentAdded?.(registered);
    } catch (err) {
      for (let i = told - 1; i >= 0; i--) ignore(() => this.buses[i]!.parentRemoved?.(registered));
      throw asUserError(err, 'write', 'add parent', `a bus refused parent ${name}`);
    }
    this.parents.set(name, registered);
    return registered;
  }

  /**
   * Removes a parent and all its vGPUs (as mdev_unregister_parent does). EBUSY, with
   * nothing removed, while any of them is open; a bus refusing one vGPU stops there.
   */
  removeParent(name: string): void {
    const parent = this.parents.get(name);
    if (!parent) fail('ENODEV', 'remove parent', `no parent ${name}`);
    this.checkParentIdle(parent);
    let reported: unknown;
    for (const vgpu of [...parent.vgpus]) {
      try {
        this.remove(vgpu.uuid);
      } catch (err) {
        if (this.vgpus.has(vgpu.uuid)) throw err; // refused: the parent stays
        reported ??= err; // the vendor's removeVgpu failed, the vGPU is gone
      }
    }
    this.parents.delete(name);
    for (let i = this.buses.length - 1; i >= 0; i--) {
      try {
        this.buses[i]!.parentRemoved?.(parent);
      } catch (err) {
        reported ??= err;
      }
    }
    if (reported !== undefined) throw asUserError(reported, 'write', 'remove parent', `removing ${name}`);
  }

  parent(name: string): RegisteredParent | undefined {
    return this.parents.get(name);
  }

  parentList(): RegisteredParent[] {
    return [...this.parents.values()];
  }

  driverList(): VendorDriver[] {
    return [...this.drivers.values()];
  }

  // ---- buses ----

  /** Attaches a bus and tells it of every parent and vGPU there already is. */
  attach(bus: VgpuBus): void {
    if (this.buses.includes(bus)) throw new TypeError('this bus is already attached');
    const parents: RegisteredParent[] = [];
    const vgpus: Vgpu[] = [];
    try {
      for (const parent of this.parents.values()) {
        bus.parentAdded?.(parent);
        parents.push(parent);
      }
      for (const vgpu of this.vgpus.values()) {
        if (vgpu.state !== 'live') continue;
        bus.vgpuAdded(vgpu);
        vgpus.push(vgpu);
      }
    } catch (err) {
      for (const vgpu of vgpus.reverse()) ignore(() => bus.vgpuRemoved(vgpu));
      for (const parent of parents.reverse()) ignore(() => bus.parentRemoved?.(parent));
      throw err;
    }
    this.buses.push(bus);
  }

  // ---- vGPUs ----

  /** Creates a vGPU of `typeId` on `parentName`, named `uuid` (a new random one if not given). */
  create(parentName: string, typeId: string, uuid?: string): Vgpu {
    const op = 'mdev create';
    const key = uuid === undefined ? generateUuid() : parseUuid(uuid);
    if (key === undefined) fail('EINVAL', op, `not a UUID: ${JSON.stringify(uuid)}`);
    const parent = this.parents.get(parentName);
    if (!parent) fail('ENOENT', op, `no parent ${parentName}`);
    const type = parent.types.get(typeId);
    if (!type) fail('ENOENT', op, `parent ${parentName} has no type ${typeId}`);
    if (this.vgpus.has(key) || this.reserved.has(key)) fail('EEXIST', op, `vGPU ${key} exists`);
    if (type.availableInstances() === 0) fail('ENOSPC', op, `no ${typeId} instance left on ${parentName}`);

    let model: VgpuModel;
    this.reserved.add(key);
    try {
      model = parent.parent.createVgpu(type.type, key);
    } catch (err) {
      throw asUserError(err, 'write', op, `${parentName} createVgpu`);
    } finally {
      this.reserved.delete(key);
    }
    if (typeof model !== 'object' || model === null) {
      throw sysError('EIO', 'write', op, `${parentName} createVgpu returned ${String(model)}`);
    }

    const vgpu = new Vgpu(key, type, model);
    this.vgpus.set(key, vgpu);
    parent.vgpus.add(vgpu);
    let told = 0;
    try {
      for (; told < this.buses.length; told++) this.buses[told]!.vgpuAdded(vgpu);
    } catch (err) {
      for (let i = told - 1; i >= 0; i--) ignore(() => this.buses[i]!.vgpuRemoved(vgpu));
      this.forget(vgpu);
      ignore(() => parent.parent.removeVgpu(model));
      throw asUserError(err, 'write', op, `adding ${key} to a bus`);
    }
    vgpu.state = 'live';
    return vgpu;
  }

  /** Removes a vGPU: from every bus, then from its vendor. See the header for errors. */
  remove(uuid: string): void {
    const op = 'mdev remove';
    const key = typeof uuid === 'string' ? parseUuid(uuid) : undefined;
    const vgpu = key === undefined ? undefined : this.vgpus.get(key);
    if (!vgpu) fail('ENODEV', op, `no vGPU ${String(uuid)}`);
    if (vgpu.state !== 'live') fail('EAGAIN', op, `vGPU ${vgpu.uuid} is ${vgpu.state}`);
    if (vgpu.isOpen) fail('EBUSY', op, `vGPU ${vgpu.uuid} is open`);

    vgpu.state = 'removing';
    for (let i = this.buses.length - 1; i >= 0; i--) {
      try {
        this.buses[i]!.vgpuRemoved(vgpu);
      } catch (err) {
        // That bus kept it: give it back to those already told, as it was.
        for (let j = i + 1; j < this.buses.length; j++) ignore(() => this.buses[j]!.vgpuAdded(vgpu));
        vgpu.state = 'live';
        throw asUserError(err, 'write', op, `a bus kept ${vgpu.uuid}`);
      }
    }
    this.forget(vgpu);
    try {
      vgpu.parent.parent.removeVgpu(vgpu.model);
    } catch (err) {
      throw asUserError(err, 'write', op, `${vgpu.parent.name} removeVgpu (the vGPU is removed)`);
    }
  }

  /** A live vGPU by UUID (either case). */
  get(uuid: string): Vgpu | undefined {
    const key = typeof uuid === 'string' ? parseUuid(uuid) : undefined;
    const vgpu = key === undefined ? undefined : this.vgpus.get(key);
    return vgpu?.state === 'live' ? vgpu : undefined;
  }

  /** Live vGPUs, of one parent or all. */
  list(parentName?: string): Vgpu[] {
    const from = parentName === undefined ? this.vgpus.values() : (this.parents.get(parentName)?.vgpus ?? new Set<Vgpu>()).values();
    const out: Vgpu[] = [];
    for (const vgpu of from) if (vgpu.state === 'live') out.push(vgpu);
    return out;
  }

  /** How many vGPUs exist (every state). */
  get size(): number {
    return this.vgpus.size;
  }

  private forget(vgpu: Vgpu): void {
    this.vgpus.delete(vgpu.uuid);
    vgpu.parent.vgpus.delete(vgpu);
  }

  private checkParentIdle(parent: RegisteredParent): void {
    for (const vgpu of parent.vgpus) {
      if (vgpu.isOpen) fail('EBUSY', 'remove parent', `vGPU ${vgpu.uuid} of ${parent.name} is open`);
    }
  }
}

/** Runs an undo step whose failure must not hide the error being reported. */
function ignore(step: () => void): void {
  try {
    step();
  } catch {
    // The original error is what the caller reports.
  }
}
