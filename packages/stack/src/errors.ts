/** A problem with what the stack was asked for (a port in use, a bad --model): one line for the user. */
export class StackError extends Error {
  readonly exitCode = 2;
}
