// Usage errors: a bad command line, not a failed operation. main prints them as one
// line and a hint, and exits 2 (operation errors exit 1).

export class UsageError extends Error {
  /** The verb whose help the hint points at, when there is one. */
  readonly verb: string | undefined;

  constructor(message: string, verb?: string) {
    super(message);
    this.name = 'UsageError';
    this.verb = verb;
  }

  hint(): string {
    return this.verb ? `try 'vgpu ${this.verb} --help'` : "try 'vgpu --help'";
  }
}

/**
 * Whether `err` is a UsageError. By name, not instanceof: the command is one bundled file
 * (dist/src/cli/vgpu.js) for the verbs that need no host, and the others are loaded from
 * the compiled tree, with a UsageError class of their own.
 */
export function isUsageError(err: unknown): err is UsageError {
  return err instanceof Error && err.name === 'UsageError' && typeof (err as Partial<UsageError>).hint === 'function';
}
