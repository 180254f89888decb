// JSON.parse for text we did not write (definition files, device lists, protocol lines).
// V8's SyntaxError quotes the input ("Unexpected token 'r', \"root:*:202\"..."), so a
// definition that is a link to a secret would print the secret's first bytes: the error
// we throw says only where the text stops being JSON, never what it holds.

/** Why `text` is not JSON, without a byte of it: "at position N", "unexpected end", or nothing. */
export function jsonSyntaxReason(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const position = /\bat position (\d+)/.exec(message);
  if (position) return `at position ${position[1]}`;
  if (/Unexpected end of JSON input/.test(message)) return 'unexpected end of input';
  if (/Unexpected token/.test(message)) return 'unexpected character';
  return 'syntax error';
}

/** JSON.parse, whose error message never quotes the input. */
export function parseJsonQuietly(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SyntaxError(`not valid JSON (${jsonSyntaxReason(err)})`);
  }
}
