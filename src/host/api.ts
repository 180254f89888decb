// What the `vgpu` command asks of a host. Two implementations answer it: the host
// object in the same process (host.ts) and the client of a running daemon
// (daemon-client.ts, over the management socket), so every verb works the same way
// whether or not `vgpu serve` runs. Shapes follow mdevctl's where they overlap.

/** One type of one parent, as `vgpu types` (and `mdevctl types`) shows it. */
export interface TypeInfo {
  parent: string;
  /** The type id: "<driver>-<name>", e.g. "simgpu-4Q" or "nvidia-63". */
  id: string;
  /** The sysfs `name` attribute ("GRID M60-4Q"). */
  name: string;
  description: string;
  deviceApi: string;
  availableInstances: number;
  /** Further read-only attributes of the type (framebuffer, heads...). */
  attributes: Record<string, string>;
}

/** One attribute of a definition: mdevctl's ordered one-key objects. */
export interface DefinitionAttr {
  name: string;
  value: string;
}

/** A saved definition: <root>/<parent>/<uuid> in mdevctl's JSON format. */
export interface Definition {
  uuid: string;
  parent: string;
  /** mdevctl's "mdev_type". */
  type: string;
  start: 'auto' | 'manual';
  attrs: DefinitionAttr[];
}

/** A vGPU (or kernel mdev) that exists now. */
export interface LiveDevice {
  uuid: string;
  parent: string;
  type: string;
  /** Whether a definition with this UUID is saved too (and its start mode). */
  defined?: 'auto' | 'manual';
  /** A user has its device fd open. */
  open: boolean;
  /** Its IOMMU group (/dev/vfio/<group>). */
  group: number;
  /** Where a VMM attaches it over vfio-user (vGPUs of a daemon), and whether a client is attached. */
  vfioUser?: { socket: string; attached: boolean };
}

/** `vgpu start`: a defined device by UUID, or a one-off from parent and type. */
export interface StartRequest {
  uuid?: string;
  parent?: string;
  type?: string;
  /** A whole definition (mdevctl's --jsonfile): type, start, attrs. */
  definition?: { type: string; start?: 'auto' | 'manual'; attrs?: DefinitionAttr[] };
}

export interface DefineRequest {
  uuid?: string;
  parent?: string;
  type?: string;
  start?: 'auto' | 'manual';
  attrs?: DefinitionAttr[];
  definition?: { type: string; start?: 'auto' | 'manual'; attrs?: DefinitionAttr[] };
}

export interface ModifyRequest {
  uuid: string;
  parent?: string;
  type?: string;
  start?: 'auto' | 'manual';
  /** --addattr NAME --value VALUE [--index N] */
  addAttr?: { name: string; value: string; index?: number };
  /** --delattr [--index N]: the attr at index, or the last one. */
  delAttr?: { index?: number };
  definition?: { type: string; start?: 'auto' | 'manual'; attrs?: DefinitionAttr[] };
}

/** `vgpu info`: a live device's regions, interrupts, decoded config space, DMA mappings. */
export interface DeviceReport {
  name: string;
  /** Lines for a person to read (the CLI prints them as they are). */
  lines: string[];
}

export interface HostApi {
  types(filter?: { parent?: string }): Promise<TypeInfo[]>;
  /** Devices that exist now. */
  list(filter?: { uuid?: string; parent?: string }): Promise<LiveDevice[]>;
  /** Saved definitions. */
  listDefined(filter?: { uuid?: string; parent?: string }): Promise<Definition[]>;
  /** Creates (and configures) a device; returns its UUID. */
  start(request: StartRequest): Promise<string>;
  /** Refused (EBUSY) while an allocation holds the vGPU, unless `force`. */
  stop(uuid: string, options?: { force?: boolean }): Promise<void>;
  /** Saves a definition; returns its UUID (generated when not given). */
  define(request: DefineRequest): Promise<string>;
  /** Removes definitions of `uuid` (under every parent unless one is named); returns how many. */
  undefine(uuid: string, parent?: string, options?: { force?: boolean }): Promise<number>;
  modify(request: ModifyRequest): Promise<Definition>;
  info(target: string): Promise<DeviceReport>;
  /** What a display vGPU shows now, as PNG bytes (base64, so it travels as JSON). */
  screenshot(uuid: string): Promise<Screenshot>;
}

/** A display vGPU's plane, encoded. */
export interface Screenshot {
  uuid: string;
  width: number;
  height: number;
  /** The PNG file's bytes, base64. */
  pngBase64: string;
}
