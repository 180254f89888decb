// The verb table: each verb's flags and help, and its module loaded only when it runs,
// so a command loads what its verb uses and no more (see bench/cli-start.ts).
import type { VerbSpec } from './verb.js';

export const typesVerb: VerbSpec = {
  name: 'types',
  summary: 'List the vGPU types each parent offers, with their available instances.',
  usage: 'types [-p PARENT] [--dumpjson]',
  help: [
    '  -p, --parent PARENT   only this parent',
    '  --dumpjson            mdevctl\'s JSON: [{"PARENT": [{"TYPE": {...}}]}]',
  ],
  options: { parent: { type: 'string', short: 'p' }, dumpjson: { type: 'boolean' } },
  load: () => import('./types.js'),
};

export const listVerb: VerbSpec = {
  name: 'list',
  summary: 'List the vGPUs that exist now, or with -d the saved definitions.',
  usage: 'list [-d|--defined] [-u UUID] [-p PARENT] [-v] [--dumpjson]',
  help: [
    '  -d, --defined         the saved definitions instead of the live vGPUs',
    '  -u, --uuid UUID       only this UUID',
    '  -p, --parent PARENT   only this parent',
    '  -v, --verbose         attributes (definitions); group, open state and vfio-user socket (live)',
    '  --dumpjson            mdevctl\'s JSON: [{"PARENT": [{"UUID": {...}}]}]',
  ],
  options: {
    defined: { type: 'boolean', short: 'd' },
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    verbose: { type: 'boolean', short: 'v' },
    dumpjson: { type: 'boolean' },
  },
  load: () => import('./list.js'),
};

export const startVerb: VerbSpec = {
  name: 'start',
  summary: 'Create and start a vGPU: a defined one, or a one-off from a parent and a type. Needs the daemon.',
  usage: 'start [-u UUID] [-p PARENT (-t TYPE | --jsonfile FILE)]',
  help: [
    '  -u, --uuid UUID       the vGPU\'s UUID (generated and printed when not given)',
    '  -p, --parent PARENT   the parent device',
    '  -t, --type TYPE       the vGPU type (see `vgpu types`)',
    '  --jsonfile FILE       a definition in mdevctl\'s JSON (type, start, attrs); not with -t',
  ],
  options: {
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    type: { type: 'string', short: 't' },
    jsonfile: { type: 'string' },
  },
  load: () => import('./start.js'),
};

export const stopVerb: VerbSpec = {
  name: 'stop',
  summary: 'Stop and remove a live vGPU (a definition of it stays). Needs the daemon.',
  usage: 'stop -u UUID [-f|--force]',
  help: ['  -u, --uuid UUID       the vGPU to stop', '  -f, --force           even when a Kubernetes allocation holds it (device plugin or DRA claim)'],
  options: { uuid: { type: 'string', short: 'u' }, force: { type: 'boolean', short: 'f' } },
  load: () => import('./stop.js'),
};

export const defineVerb: VerbSpec = {
  name: 'define',
  summary: 'Save a vGPU definition: from a parent and a type, from a JSON file, or (-u alone) from a live vGPU.',
  usage: 'define [-u UUID] [-p PARENT (-t TYPE [-a] | --jsonfile FILE)]',
  help: [
    '  -u, --uuid UUID       the UUID (generated and printed when not given)',
    '  -p, --parent PARENT   the parent device',
    '  -t, --type TYPE       the vGPU type',
    '  -a, --auto            start it when the daemon starts or its parent appears',
    '  --jsonfile FILE       a definition in mdevctl\'s JSON; not with -t or -a',
  ],
  options: {
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    type: { type: 'string', short: 't' },
    auto: { type: 'boolean', short: 'a' },
    jsonfile: { type: 'string' },
  },
  load: () => import('./define.js'),
};

export const undefineVerb: VerbSpec = {
  name: 'undefine',
  summary: 'Remove the saved definitions of a UUID (under every parent unless -p names one).',
  usage: 'undefine -u UUID [-p PARENT] [-f|--force]',
  help: [
    '  -u, --uuid UUID       the definition to remove',
    '  -p, --parent PARENT   only under this parent',
    '  -f, --force           even when a Kubernetes allocation holds the vGPU',
  ],
  options: { uuid: { type: 'string', short: 'u' }, parent: { type: 'string', short: 'p' }, force: { type: 'boolean', short: 'f' } },
  load: () => import('./undefine.js'),
};

export const modifyVerb: VerbSpec = {
  name: 'modify',
  summary: 'Change a saved definition: its type, start mode or attributes.',
  usage: 'modify -u UUID [-p PARENT] [-t TYPE] [--auto|--manual] [--addattr NAME --value V [--index N]] [--delattr [--index N]] [--jsonfile FILE]',
  help: [
    '  -u, --uuid UUID       the definition to change',
    '  -p, --parent PARENT   the parent, when the UUID is defined under several',
    '  -t, --type TYPE       a new type',
    '  -a, --auto            start it automatically',
    '  -m, --manual          start it only on request',
    '  --addattr NAME        add an attribute (with --value, at --index or at the end)',
    '  --value V             the added attribute\'s value',
    '  --delattr             remove the attribute at --index, or the last one',
    '  --index N             where --addattr inserts or which one --delattr removes',
    '  --jsonfile FILE       replace type, start and attrs from mdevctl\'s JSON; alone',
  ],
  options: {
    uuid: { type: 'string', short: 'u' },
    parent: { type: 'string', short: 'p' },
    type: { type: 'string', short: 't' },
    auto: { type: 'boolean', short: 'a' },
    manual: { type: 'boolean', short: 'm' },
    addattr: { type: 'string' },
    value: { type: 'string' },
    delattr: { type: 'boolean' },
    index: { type: 'string' },
    jsonfile: { type: 'string' },
  },
  load: () => import('./modify.js'),
};

export const infoVerb: VerbSpec = {
  name: 'info',
  summary: 'Show a live vGPU (by UUID), PCI device (by address) or vfio-user device (by socket): regions, IRQs, config space, DMA mappings.',
  usage: 'info UUID|BDF|SOCKET',
  help: [
    '  UUID|BDF              a live vGPU\'s UUID or a PCI address like 0000:00:04.0',
    '  SOCKET                the path of a vfio-user socket (one with a \'/\' or ending in .sock),',
    '                        read here through the vfio-user client',
  ],
  options: {},
  maxPositionals: 1,
  load: () => import('./info.js'),
};

export const screenshotVerb: VerbSpec = {
  name: 'screenshot',
  summary: 'Save what a display vGPU shows (its QUERY_GFX_PLANE plane) as a PNG file.',
  usage: 'screenshot UUID|SOCKET FILE.png|-',
  help: [
    '  UUID                  a live display vGPU that no user holds open',
    '  SOCKET                or the path of its vfio-user socket, captured here through the client',
    '  FILE.png              written atomically (a crash leaves the old file or the new one); only a',
    '                        regular file is replaced (never a link or a folder); `-` is stdout',
  ],
  options: {},
  maxPositionals: 2,
  load: () => import('./screenshot.js'),
};

export const serveVerb: VerbSpec = {
  name: 'serve',
  summary: 'Run the vgpu daemon: it owns the parents and live vGPUs, answers the CLI on a unix socket and serves each vGPU over vfio-user.',
  usage: 'serve [--socket PATH] [--root DIR] [--run-dir DIR] [--device-plugin [...]] [--dra [...]]',
  help: [
    '  --run-dir DIR         where each vGPU\'s vfio-user socket goes, <DIR>/<UUID>.sock',
    '                        (default: the directory of the daemon\'s socket, /run/vfio-vgpu)',
    '  The sockets are made mode 0600 (their owner: whoever runs the daemon); a second daemon',
    '  on the same socket is refused. Once listening, every `start: auto` definition whose',
    '  parent exists is started. SIGTERM, SIGINT or SIGHUP stops it: vfio-user clients are',
    '  disconnected, live vGPUs released, definitions stay.',
    'Kubernetes node agents (README: "Kubernetes and KubeVirt"):',
    '  --device-plugin       serve the kubelet device plugin API: one resource per vGPU type',
    '  --device-plugin-dir D the kubelet\'s folder (default /var/lib/kubelet/device-plugins)',
    '  --resource-domain D   resources are D/<type name> (default vfio-vgpu.io)',
    '  --state-dir DIR       where allocations are kept across restarts (default /var/lib/vfio-vgpu)',
    '  --dra                 serve the DRA kubelet plugin and publish ResourceSlices',
    '  --dra-driver NAME     the driver name (default vgpu.vfio-vgpu.io)',
    '  --node-name NAME      this node (default $NODE_NAME, else the host name)',
    '  --kubeconfig FILE     the API server (default $KUBECONFIG, ~/.kube/config or in-cluster)',
    '  --plugins-registry D  (default /var/lib/kubelet/plugins_registry)',
    '  --dra-plugin-dir D    socket and checkpoint (default /var/lib/kubelet/plugins/<driver>)',
    '  --cdi-dir DIR         CDI specs (default /var/run/cdi)',
    '  --partitionable       a framebuffer counter per parent that devices consume',
  ],
  options: {
    'run-dir': { type: 'string' },
    'device-plugin': { type: 'boolean' }, 'device-plugin-dir': { type: 'string' }, 'resource-domain': { type: 'string' }, 'state-dir': { type: 'string' },
    dra: { type: 'boolean' }, 'dra-driver': { type: 'string' }, 'node-name': { type: 'string' }, kubeconfig: { type: 'string' },
    'plugins-registry': { type: 'string' }, 'dra-plugin-dir': { type: 'string' }, 'cdi-dir': { type: 'string' }, partitionable: { type: 'boolean' },
  },
  load: () => import('./serve.js'),
};

export const migrateVerb: VerbSpec = {
  name: 'migrate',
  summary: 'Live-migrate a simgpu vGPU to another daemon on this machine, this command acting as its VMM with a workload.',
  usage: 'migrate -u UUID --to SOCKET [--idle] [--rounds N]',
  help: [
    '  -u, --uuid UUID       the vGPU to move (from the daemon at --socket); no client may hold it',
    '  --to SOCKET           the target daemon\'s socket: it starts the same parent and type under UUID',
    '  --idle                the workload stops before the move (default: it runs during pre-copy)',
    '  --rounds N            pre-copy rounds (default 4)',
  ],
  options: { uuid: { type: 'string', short: 'u' }, to: { type: 'string' }, idle: { type: 'boolean' }, rounds: { type: 'string' } },
  load: () => import('./migrate.js'),
};

export const kubevirtVerb: VerbSpec = {
  name: 'kubevirt',
  summary: 'Print the KubeVirt configuration (permittedHostDevices) for this host\'s vGPU types, for `serve --device-plugin`.',
  usage: 'kubevirt [--resource-domain D] [--json]',
  help: [
    '  --resource-domain D   the domain `serve --device-plugin` uses (default vfio-vgpu.io)',
    '  --json                a merge patch for `kubectl patch kubevirt kubevirt -n kubevirt --type merge -p`',
  ],
  options: { 'resource-domain': { type: 'string' }, json: { type: 'boolean' } },
  load: () => import('./kubevirt.js'),
};

export const replVerb: VerbSpec = {
  name: 'repl',
  summary: 'A node REPL with a host loaded (host, sys, registry, the VFIO client API, uapi).',
  usage: 'repl [--root DIR] [--socket PATH]',
  help: [
    '  The REPL\'s host is its own (its vGPUs end with the REPL); `daemon` is a client of',
    '  the running daemon, when one runs. `await` works at the prompt; .exit leaves.',
  ],
  options: {},
  load: () => import('./repl.js'),
};

export const demoVerb: VerbSpec = {
  name: 'demo',
  summary: 'A guided walk through the VFIO client and the vGPU core (the mock kernel unless VGPU_SYS=native).',
  usage: 'demo [PCI-ADDRESS]',
  help: ['  PCI-ADDRESS           the edu device to walk through (default 0000:00:04.0)'],
  options: {},
  maxPositionals: 1,
  load: () => import('./demo.js'),
};

/** `vgpu VERB --help`. */
export function helpText(verb: VerbSpec): string[] {
  return [`usage: vgpu ${verb.usage}`, '', verb.summary, '', ...verb.help,
    '  --root DIR       definitions root (default $VGPU_DEFINITIONS_ROOT or /etc/vfio-vgpu.d)',
    '  --socket PATH    the daemon\'s socket (default $VGPU_SOCKET or /run/vfio-vgpu/vgpu.sock)',
    '  -h, --help       this help'];
}
