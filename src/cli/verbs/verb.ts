// A verb: its flags, its help, and (in its own module, loaded when it runs) what it
// does with a parsed command line.
import type { Options, Parsed } from '../args.js';
import type { Cli } from '../context.js';

export interface VerbSpec {
  name: string;
  /** One line for `vgpu --help`. */
  summary: string;
  /** The usage line after "vgpu ". */
  usage: string;
  /** Lines describing the flags and behaviour, for `vgpu VERB --help`. */
  help: string[];
  options: Options;
  maxPositionals?: number;
  /** The verb's module: loaded only for this verb, since some pull in every layer. */
  load(): Promise<{ run(parsed: Parsed, cli: Cli): Promise<number> }>;
}
