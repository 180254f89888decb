// The `vgpu` command without the process around it: global flags, the verb table,
// help, and the one place errors become a line on stderr and an exit code (1 for a
// failed operation, 2 for a bad command line), so tests run it in-process.
import { readFileSync } from 'node:fs';
import { splitGlobal, parseVerbArgs, stringValue } from './args.js';
import { defaultRoot, defaultSocket, type Cli, type HostProvider } from './context.js';
import { connectDaemon, createLocalHost } from './definitions-link.js';
import type { Output } from './output.js';
import { isUsageError, UsageError } from './usage.js';
import { defineVerb, demoVerb, infoVerb, kubevirtVerb, listVerb, migrateVerb, modifyVerb, replVerb, screenshotVerb, serveVerb, startVerb, stopVerb, typesVerb, undefineVerb, helpText } from './verbs/index.js';
import type { VerbSpec } from './verbs/verb.js';

export const verbs: VerbSpec[] = [typesVerb, listVerb, startVerb, stopVerb, defineVerb, undefineVerb, modifyVerb,
  infoVerb, screenshotVerb, migrateVerb, serveVerb, kubevirtVerb, replVerb, demoVerb];

/** mdevctl's alias. */
const aliases: Record<string, string> = { lsmdev: 'list' };

export const realHosts: HostProvider = { daemon: connectDaemon, inProcess: createLocalHost };

export interface RunOptions {
  output: Output;
  hosts?: HostProvider;
  env?: NodeJS.ProcessEnv;
}

export async function runCli(argv: string[], options: RunOptions): Promise<number> {
  const { output } = options;
  const env = options.env ?? process.env;
  let verbName: string | undefined;
  try {
    const global = splitGlobal(argv);
    if (global.version) {
      if (global.verb !== undefined) throw new UsageError(`--version takes no arguments (got '${global.verb}')`);
      output.out(`vgpu ${version()}`);
      return 0;
    }
    verbName = global.verb === undefined ? undefined : aliases[global.verb] ?? global.verb;
    if (verbName === undefined) {
      if (global.help) { for (const line of mainHelp()) output.out(line); return 0; }
      throw new UsageError(`no verb given; verbs: ${verbs.map((v) => v.name).join(', ')}`);
    }
    const verb = verbs.find((v) => v.name === verbName);
    if (!verb) {
      const name = verbName;
      verbName = undefined;
      throw new UsageError(`unknown verb '${name}'; verbs: ${verbs.map((v) => v.name).join(', ')}`);
    }
    const parsed = parseVerbArgs(verb.name, global.rest, verb.options, verb.maxPositionals ?? 0);
    if (global.help || parsed.values['help'] === true) {
      for (const line of helpText(verb)) output.out(line);
      return 0;
    }
    const cli: Cli = {
      root: stringValue(parsed.values, 'root') ?? global.root ?? nonEmpty(env['VGPU_DEFINITIONS_ROOT']) ?? defaultRoot,
      rootGiven: (stringValue(parsed.values, 'root') ?? global.root ?? nonEmpty(env['VGPU_DEFINITIONS_ROOT'])) !== undefined,
      socket: stringValue(parsed.values, 'socket') ?? global.socket ?? nonEmpty(env['VGPU_SOCKET']) ?? defaultSocket,
      output,
      hosts: options.hosts ?? realHosts,
    };
    return await (await verb.load()).run(parsed, cli);
  } catch (err) {
    return report(err, output, env);
  }
}

function report(err: unknown, output: Output, env: NodeJS.ProcessEnv): number {
  if (isUsageError(err)) {
    output.err(`vgpu: ${err.message}`);
    output.err(err.hint());
    return 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  output.err(`vgpu: ${(message.split('\n')[0] ?? '').trim() || 'failed'}`);
  if (env['VGPU_DEBUG'] === '1' && err instanceof Error && err.stack) output.err(err.stack);
  return 1;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function mainHelp(): string[] {
  const width = Math.max(...verbs.map((v) => v.name.length));
  return [
    'usage: vgpu [--root DIR] [--socket PATH] VERB [flags]',
    '',
    'Manage vGPUs: mdevctl\'s verbs and flags, the same definitions, and a daemon (`vgpu serve`) that owns the live ones.',
    '',
    ...verbs.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}`),
    '',
    '  --root DIR       definitions root (default $VGPU_DEFINITIONS_ROOT or /etc/vfio-vgpu.d)',
    '  --socket PATH    the daemon\'s socket (default $VGPU_SOCKET or /run/vfio-vgpu/vgpu.sock)',
    '  --version        the version',
    '',
    "`vgpu VERB --help` tells more about one verb.",
  ];
}

function version(): string {
  // dist/src/cli/cli.js and src/cli/cli.ts are both three levels below package.json.
  const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
