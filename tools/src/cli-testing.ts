// Helpers for the CLI's tests.
import assert from "node:assert/strict";
import { CliError } from "./cli.ts";
import { dispatch } from "./dispatch.ts";

/** The CliError message `temper <argv...>` ends with, run in this process (for commands that print nothing first). */
export async function errorOf(argv: string[]): Promise<string> {
  try {
    await dispatch(argv);
  } catch (err) {
    assert.ok(err instanceof CliError, String(err));
    return err.message;
  }
  assert.fail(`temper ${argv.join(" ")} succeeded`);
}
