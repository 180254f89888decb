// The host in this process: it owns the fd layer, a vGPU registry (shown on the mock
// kernel's mdev bus, so the ordinary VFIO client opens its vGPUs), the simulated
// parents, the kernel's own mdev parents (kernel-mdev.ts) and the definition store,
// and answers every HostApi call with mdevctl's semantics (notes/mdevctl.md).
//
// One view of two kinds of parent: a name is either a TypeScript parent in the
// registry or a kernel parent under /sys/class/mdev_bus; types, list, start and stop
// work the same way on both.
//
// Attributes (mdevctl's "attrs") are files in the device's sysfs directory, written in
// order right after the create, as mdevctl does: /sys/bus/mdev/devices/<uuid>/<name>.
// On a kernel mdev that is the vendor's attribute file: one that fails (ENOENT, or
// EACCES/EINVAL from the file) removes the device again, never a half-configured device.
// The registry's (TypeScript, simulated) vGPUs have no writable attribute (their device
// dir holds only remove, mdev_type and iommu_group), so define, modify and start refuse
// attributes on their parents up front (noAttributesError): a definition that could never
// start is never saved. "remove" is refused as an attribute name (writing it would remove
// the device).
import { isSysError, type SysError } from '../addon/errors.js';
import { openSys } from '../sys/index.js';
import type { MockSysLayer } from '../sys/mock.js';
import type { Sysfs, SysLayer } from '../sys/types.js';
import { attachMockKernel, generateUuid, VgpuRegistry, type MockMdevBus, type RegisteredParent, type Vgpu } from '../vgpu/index.js';
import { attachVfioUser, type VfioUserBus } from '../vgpu/vfio-user/index.js';
import type { VendorDriver, VgpuParent } from '../vgpu/vendor.js';
import type { Definition, DefinitionAttr, DefineRequest, DeviceReport, HostApi, LiveDevice, ModifyRequest, Screenshot, StartRequest, TypeInfo } from './api.js';
import { DisplayVgpu, encodePng, screenshotPng } from '../vendors/display/index.js';
import { PNG } from 'pngjs';
import { checkStart, defineByType, hostError, noAttributesError, noTypeError, validateAttrs } from './define.js';
import { DefinitionStore, definitionsRoot } from './definitions.js';
import { AllocationHolds } from './holds.js';
import { findDefinition, modifyDefinition, removeDefinitions } from './definition-edits.js';

export { hostError } from './define.js';
import { describeTarget } from './info.js';
import { KernelMdevParents, MDEV_BUS_DEVICES } from './kernel-mdev.js';
import { quoteName, validateParentName, validateTypeId, validateUuid } from './names.js';
import { defaultSimulatedParents, simulatedWanted } from './simulated.js';

export interface HostOptions {
  /** The fd layer; default openSys() (VGPU_SYS, else native when /dev/vfio/vfio exists). */
  sys?: SysLayer;
  /** Definitions root; default $VGPU_DEFINITIONS_ROOT, else /etc/vfio-vgpu.d. */
  definitionsRoot?: string;
  /** Add the simulated parents (simgpu0); default: on the mock kernel, or VGPU_SIMULATED=1. */
  simulated?: boolean;
  /**
   * Where kernel mdev parents are looked for; default the fd layer's sysfs on a real
   * kernel and none on the mock one (whose mdev bus shows only the registry's parents).
   */
  kernelSysfs?: Sysfs | null;
  /** Told of each autostart failure (one line); default: process warnings. */
  report?: (message: string) => void;
  /**
   * Told of each autostart success as it happens, so a log has them in order with the
   * failures (a start that took the capacity comes before the failure it explains).
   */
  started?: (uuid: string) => void;
  /**
   * Serve each vGPU over vfio-user, one socket per vGPU in this directory
   * (`<runDir>/<uuid>.sock`), so a VMM can attach it. `vgpu serve` does; a one-off
   * command's host does not (its sockets would vanish with it).
   */
  vfioUser?: { runDir: string };
}

/** The result of one autostart pass. */
export interface AutostartResult {
  started: string[];
  failed: { uuid: string; parent: string; error: SysError }[];
}


type ParentKind = 'registry' | 'kernel';

export class Host implements HostApi {
  readonly sys: SysLayer;
  readonly registry = new VgpuRegistry();
  readonly definitions: DefinitionStore;
  /** The kernel's own mdev parents, when this host looks for them. */
  readonly kernelMdev: KernelMdevParents | undefined;
  /** The mock kernel's mdev bus showing the registry (undefined on a real kernel). */
  readonly mdevBus: MockMdevBus | undefined;
  /** The vfio-user server presenting every vGPU on a socket (when asked for). */
  readonly vfioUser: VfioUserBus | undefined;
  /** vGPUs handed to workloads by the node agents (cluster/): stop and undefine refuse them without force. */
  readonly holds = new AllocationHolds();
  /** Devices this host created, removed again at close(). */
  private readonly created = new Set<string>();
  /** Run first at close(): what serves this host to others (the cluster agents). */
  private readonly closers: (() => Promise<void>)[] = [];
  private readonly report: (message: string) => void;
  private readonly started: (uuid: string) => void;
  private closed = false;

  constructor(options: HostOptions = {}) {
    this.sys = options.sys ?? openSys();
    const root = definitionsRoot(options.definitionsRoot);
    this.definitions = new DefinitionStore(root);
    this.report = options.report ?? ((message) => process.emitWarning(message, 'VgpuAutostartWarning'));
    this.started = options.started ?? (() => undefined);
    if (this.sys.kind === 'mock') this.mdevBus = attachMockKernel(this.registry, (this.sys as MockSysLayer).kernel);
    if (options.vfioUser) this.vfioUser = attachVfioUser(this.registry, { runDir: options.vfioUser.runDir });
    const kernelSysfs = options.kernelSysfs === undefined ? (this.sys.kind === 'native' ? this.sys.sysfs : null) : options.kernelSysfs;
    this.kernelMdev = kernelSysfs ? new KernelMdevParents(kernelSysfs, (name) => this.registry.parent(name) !== undefined) : undefined;
    if (options.simulated ?? simulatedWanted(this.sys.kind)) {
      for (const { driver, parent } of defaultSimulatedParents()) {
        if (!this.registry.driverList().some((d) => d.name === driver.name)) this.registry.registerDriver(driver);
        this.registry.addParent(driver.name, parent);
      }
    }
  }

  // ---- parents ----

  /** Every parent name: the registry's, then the kernel's. */
  parentNames(): string[] {
    return [...this.registry.parentList().map((p) => p.name), ...(this.kernelMdev?.parents() ?? [])];
  }

  /**
   * A driver claims a new parent; then every `start: auto` definition under it starts
   * (what mdevctl's udev rule does when a parent registers).
   */
  async addParent(driver: VendorDriver, parent: VgpuParent): Promise<AutostartResult> {
    this.checkOpen();
    if (!this.registry.driverList().includes(driver)) this.registry.registerDriver(driver);
    const registered: RegisteredParent = this.registry.addParent(driver.name, parent);
    return this.startAuto(registered.name);
  }

  /**
   * Creates every `start: auto` definition whose parent exists and that is not running
   * (of one parent, or of all). One definition's failure is reported and the others go on.
   */
  async startAuto(parent?: string): Promise<AutostartResult> {
    this.checkOpen();
    const result: AutostartResult = { started: [], failed: [] };
    const all = await this.loadDefinitions();
    for (const def of all) {
      if (def.start !== 'auto' || (parent !== undefined && def.parent !== parent)) continue;
      if (this.parentKind(def.parent) === undefined || this.liveDevice(def.uuid) !== undefined) continue;
      try {
        this.create(def.parent, def.type, def.uuid, def.attrs);
        result.started.push(def.uuid);
        this.started(def.uuid);
      } catch (err) {
        const error = isSysError(err) ? err : hostError('EIO', String(err), err);
        result.failed.push({ uuid: def.uuid, parent: def.parent, error });
        this.report(`autostart of ${def.uuid} on ${def.parent} failed: ${error.message}`);
      }
    }
    return result;
  }

  // ---- HostApi ----

  async types(filter: { parent?: string } = {}): Promise<TypeInfo[]> {
    this.checkOpen();
    const only = filter.parent === undefined ? undefined : validateParentName(filter.parent);
    if (only !== undefined) this.requireParent(only);
    const names = only === undefined ? this.parentNames() : [only];
    const out: TypeInfo[] = [];
    for (const name of names) {
      const registered = this.registry.parent(name);
      if (registered) {
        for (const type of registered.typeList()) {
          out.push({
            parent: name,
            id: type.id,
            name: type.name,
            description: type.description ?? '',
            deviceApi: type.deviceApi,
            availableInstances: type.availableInstances(),
            attributes: { ...type.attributes },
          });
        }
      } else if (this.kernelMdev) {
        out.push(...this.kernelMdev.types(name));
      }
    }
    return out;
  }

  async list(filter: { uuid?: string; parent?: string } = {}): Promise<LiveDevice[]> {
    this.checkOpen();
    const uuid = filter.uuid === undefined ? undefined : validateUuid(filter.uuid);
    const parent = filter.parent === undefined ? undefined : validateParentName(filter.parent);
    const defs = await this.loadDefinitions();
    const out: LiveDevice[] = [];
    for (const device of this.liveDevices()) {
      if ((uuid !== undefined && device.uuid !== uuid) || (parent !== undefined && device.parent !== parent)) continue;
      const def = defs.find((d) => d.uuid === device.uuid && d.parent === device.parent);
      out.push(def ? { ...device, defined: def.start } : device);
    }
    return out;
  }

  async listDefined(filter: { uuid?: string; parent?: string } = {}): Promise<Definition[]> {
    this.checkOpen();
    return this.definitions.select(filter);
  }

  async start(request: StartRequest): Promise<string> {
    this.checkOpen();
    let uuid = request.uuid === undefined ? undefined : validateUuid(request.uuid);
    let parent = request.parent === undefined ? undefined : validateParentName(request.parent);
    let type: string;
    let attrs: DefinitionAttr[];
    if (request.definition !== undefined || request.type !== undefined) {
      type = validateTypeId(request.definition?.type ?? request.type);
      if (request.definition !== undefined && request.type !== undefined && request.type !== request.definition.type) {
        throw hostError('EINVAL', 'give the type either with --type or in the JSON file, not both');
      }
      attrs = validateAttrs(request.definition?.attrs ?? []);
      if (parent === undefined) throw hostError('EINVAL', 'starting a device by type needs its parent (--parent)');
    } else {
      if (uuid === undefined) throw hostError('EINVAL', 'start needs the UUID of a defined device, or a parent and a type');
      const def = findDefinition(this.definitions, uuid, parent, 'start');
      parent = def.parent;
      type = def.type;
      attrs = def.attrs;
    }
    uuid ??= generateUuid();
    this.create(parent, type, uuid, attrs);
    return uuid;
  }

  async stop(uuid: string, options: { force?: boolean } = {}): Promise<void> {
    this.checkOpen();
    const key = validateUuid(uuid);
    this.holds.check(key, 'stop', options.force === true);
    const vgpu = this.registry.get(key);
    if (vgpu) {
      if (vgpu.isOpen) throw hostError('EBUSY', `device ${key} is in use (a user has it open): close it first`);
      try {
        this.registry.remove(key);
      } catch (err) {
        throw rephrase(err, `cannot stop ${key}`);
      }
    } else if (this.kernelMdev?.device(key)) {
      try {
        this.kernelMdev.remove(key);
      } catch (err) {
        throw rephrase(err, `cannot stop ${key}`);
      }
    } else {
      throw hostError('ENODEV', `device ${key} is not running`);
    }
    this.created.delete(key);
  }

  async define(request: DefineRequest): Promise<string> {
    this.checkOpen();
    // A parent that is not here yet may be defined for (it starts when it appears);
    // a parent that is here must offer the type.
    const check = (parent: string, type: string, attrs: readonly DefinitionAttr[]): void => {
      if (this.parentKind(parent) !== undefined) this.requireType(parent, type);
      this.requireAttributesApply(parent, type, attrs);
    };
    if (request.definition !== undefined || request.type !== undefined) return defineByType(this.definitions, request, check);
    const uuid = request.uuid === undefined ? undefined : validateUuid(request.uuid);
    const parent = request.parent === undefined ? undefined : validateParentName(request.parent);
    checkStart(request.start ?? 'manual');
    if (uuid === undefined) throw hostError('EINVAL', 'define needs the UUID of a running device, or a parent and a type');
    const live = this.liveDevice(uuid);
    if (!live) throw hostError('ENODEV', `device ${uuid} is not running: give --parent and --type to define it`);
    if (parent !== undefined && parent !== live.parent) throw hostError('EINVAL', `device ${uuid} runs on ${live.parent}, not ${parent}`);
    return defineByType(this.definitions, { uuid, parent: live.parent, type: live.type, start: request.start ?? 'manual', attrs: request.attrs ?? [] },
      (p, t, attrs) => this.requireAttributesApply(p, t, attrs));
  }

  async undefine(uuid: string, parent?: string, options: { force?: boolean } = {}): Promise<number> {
    this.checkOpen();
    const key = validateUuid(uuid);
    this.holds.check(key, 'undefine', options.force === true);
    return removeDefinitions(this.definitions, key, parent);
  }

  async modify(request: ModifyRequest): Promise<Definition> {
    this.checkOpen();
    return modifyDefinition(this.definitions, request, {
      type: (parent, type) => { if (this.parentKind(parent) !== undefined) this.requireType(parent, type); },
      attributes: (parent, type, attrs) => this.requireAttributesApply(parent, type, attrs),
    });
  }

  async info(target: string): Promise<DeviceReport> {
    this.checkOpen();
    return describeTarget(this, target);
  }

  /**
   * Captures a display vGPU through the VFIO client, as a VMM would (QUERY_GFX_PLANE,
   * then the plane's region). The device is opened for the capture, so a vGPU its user
   * holds open is EBUSY, unless this host serves it itself: then the picture is read from
   * the vGPU's own video memory (a VMM attached over vfio-user holds it for its life).
   */
  async screenshot(uuid: string): Promise<Screenshot> {
    this.checkOpen();
    const name = validateUuid(uuid);
    if (!this.liveDevices().some((d) => d.uuid === name)) throw hostError('ENOENT', `no vGPU ${name} exists`);
    let png: Buffer;
    try {
      png = screenshotPng(this.sys, name);
    } catch (err) {
      if (!isSysError(err, 'EBUSY')) throw err;
      const model = this.registry.get(name)?.model;
      if (!(model instanceof DisplayVgpu)) throw hostError('EBUSY', `vGPU ${name} is open by its user; a screenshot needs it free`);
      const image = model.scanout();
      if (!image) throw hostError('ENODATA', `vGPU ${name}'s display is off`);
      png = encodePng(image);
    }
    const { width, height } = PNG.sync.read(png);
    return { uuid: name, width, height, pngBase64: png.toString('base64') };
  }

  /** Stops what this host started (its vGPUs released); definitions stay as they are. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const closer of this.closers.splice(0).reverse()) {
      try {
        await closer();
      } catch (err) {
        this.report(`closing: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.closed = true;
    // vfio-user clients go first: each releases its vGPU, which can then be removed.
    this.vfioUser?.close();
    const failures: string[] = [];
    for (const uuid of [...this.created].reverse()) {
      try {
        if (this.registry.get(uuid)) this.registry.remove(uuid);
        else if (this.kernelMdev?.device(uuid)) this.kernelMdev.remove(uuid);
      } catch (err) {
        failures.push(`${uuid}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.created.clear();
    if (failures.length > 0) throw hostError('EBUSY', `could not remove ${failures.join('; ')}`);
  }

  /** Runs `closer` at close(), before the vGPUs are released (last added, first run). */
  addCloser(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // ---- the devices that exist ----

  /** Every device that exists now, the registry's then the kernel's. */
  liveDevices(): LiveDevice[] {
    const out: LiveDevice[] = [];
    for (const vgpu of this.registry.list()) out.push(this.vgpuDevice(vgpu));
    for (const mdev of this.kernelMdev?.devices() ?? []) out.push({ uuid: mdev.uuid, parent: mdev.parent, type: mdev.type, open: false, group: mdev.group });
    return out;
  }

  liveDevice(uuid: string): LiveDevice | undefined {
    const key = uuid.toLowerCase();
    const vgpu = this.registry.get(key);
    if (vgpu) return this.vgpuDevice(vgpu);
    const mdev = this.kernelMdev?.device(key);
    return mdev ? { uuid: mdev.uuid, parent: mdev.parent, type: mdev.type, open: false, group: mdev.group } : undefined;
  }

  // ---- internals ----

  private vgpuDevice(vgpu: Vgpu): LiveDevice {
    const device: LiveDevice = { uuid: vgpu.uuid, parent: vgpu.parent.name, type: vgpu.type.id, open: vgpu.isOpen, group: this.groupOf(vgpu.uuid) };
    if (this.vfioUser?.serves(vgpu.uuid)) {
      device.vfioUser = { socket: this.vfioUser.socketPath(vgpu.uuid), attached: this.vfioUser.clientOf(vgpu.uuid) !== undefined };
    }
    return device;
  }

  /** mdevctl's create: checks in its order, the create, then the attributes (rolled back on failure). */
  private create(parent: string, type: string, uuid: string, attrs: readonly DefinitionAttr[]): void {
    if (this.liveDevice(uuid)) throw hostError('EEXIST', `Device already exists: ${uuid}`);
    const kind = this.requireParent(parent);
    this.requireType(parent, type);
    this.requireAttributesApply(parent, type, attrs);
    const available = kind === 'registry' ? this.registry.parent(parent)!.types.get(type)!.availableInstances() : this.kernelMdev!.availableInstances(parent, type);
    if (available <= 0) throw hostError('EUSERS', `No available instances of ${type} on ${parent}`);
    try {
      if (kind === 'registry') this.registry.create(parent, type, uuid);
      else this.kernelMdev!.create(parent, type, uuid);
    } catch (err) {
      throw rephrase(err, `cannot create ${type} on ${parent}`);
    }
    this.created.add(uuid);
    for (const attr of attrs) {
      try {
        if (attr.name === 'remove') throw hostError('EINVAL', 'the name "remove" is the mdev core\'s, not an attribute');
        this.writeAttribute(kind, uuid, attr.name, attr.value);
      } catch (err) {
        let undone = 'the device was removed again';
        try {
          if (kind === 'registry') this.registry.remove(uuid);
          else this.kernelMdev!.remove(uuid);
          this.created.delete(uuid);
        } catch (removeErr) {
          undone = `and removing it failed too: ${removeErr instanceof Error ? removeErr.message : String(removeErr)}`;
        }
        const code = isSysError(err) ? err.code : 'EIO';
        throw hostError(code, `attribute ${quoteName(attr.name)} of ${uuid}: ${describe(err)}; ${undone}`, err);
      }
    }
  }

  private writeAttribute(kind: ParentKind, uuid: string, name: string, value: string): void {
    if (kind === 'kernel') return this.kernelMdev!.writeAttribute(uuid, name, value);
    if (!this.mdevBus) throw hostError('ENOENT', `no sysfs attribute ${name} (this vGPU has no sysfs node here)`);
    const path = `${MDEV_BUS_DEVICES}/${uuid}/${name}`;
    if (!this.sys.sysfs.exists(path)) throw hostError('ENOENT', `the vGPU has no attribute ${quoteName(name)}`);
    this.sys.sysfs.write(path, value);
  }

  /** EINVAL for attributes on a registry parent, whose vGPUs have none (a kernel parent's vendor decides at start). */
  private requireAttributesApply(parent: string, type: string, attrs: readonly DefinitionAttr[]): void {
    if (attrs.length > 0 && this.parentKind(parent) === 'registry') throw noAttributesError(parent, type, attrs);
  }

  private parentKind(name: string): ParentKind | undefined {
    if (this.registry.parent(name)) return 'registry';
    if (this.kernelMdev?.hasParent(name)) return 'kernel';
    return undefined;
  }

  /** The parent's kind, or ENOENT with a "did you mean" for a case mismatch. */
  private requireParent(name: string): ParentKind {
    const kind = this.parentKind(name);
    if (kind) return kind;
    const names = this.parentNames();
    const near = names.find((n) => n.toLowerCase() === name.toLowerCase());
    const hint = near !== undefined ? ` (did you mean ${near}?)` : names.length > 0 ? ` (parents: ${names.join(', ')})` : ' (this host has no parent)';
    throw hostError('ENOENT', `unknown parent ${name}${hint}`);
  }

  private requireType(parent: string, type: string): void {
    const kind = this.requireParent(parent);
    const ids = kind === 'registry' ? [...this.registry.parent(parent)!.types.keys()] : this.kernelMdev!.typeIds(parent);
    if (kind === 'kernel' ? this.kernelMdev!.hasType(parent, type) : ids.includes(type)) return;
    throw noTypeError(parent, type, ids);
  }


  private async loadDefinitions(): Promise<Definition[]> {
    return (await this.definitions.load()).definitions;
  }

  private groupOf(uuid: string): number {
    return this.sys.kind === 'mock' ? ((this.sys as MockSysLayer).kernel.groupOf(uuid) ?? -1) : -1;
  }

  private checkOpen(): void {
    if (this.closed) throw hostError('EBADF', 'this host is closed');
  }
}

/** A host for this process (see HostOptions for the defaults). */
export function createHost(options: HostOptions = {}): Host {
  return new Host(options);
}




function describe(err: unknown): string {
  if (isSysError(err)) return err.message.includes(err.code) ? err.message : `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** An error from below, as one line that says what was being done; code and errno kept. */
function rephrase(err: unknown, doing: string): SysError {
  if (!isSysError(err)) return hostError('EIO', `${doing}: ${describe(err)}`, err);
  const out = hostError(err.code, `${doing}: ${describe(err)}`, err);
  return out;
}
