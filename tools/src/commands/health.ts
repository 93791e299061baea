// `temper health HOST:PORT [--service NAME]`: exit 0 when the service reports SERVING (for
// container health checks and scripts), else one line and exit 1.
import { checkHealth } from "@temper/kit";
import { CliError, numberFlag, parseFlags } from "../cli.ts";

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { service: { type: "string", default: "" }, "timeout-ms": { type: "string" }, help: { type: "boolean" } },
    true,
  );
  if (values.help || positionals.length !== 1) {
    if (values.help) {
      process.stdout.write("usage: temper health HOST:PORT [--service NAME] [--timeout-ms N]\n");
      return;
    }
    throw new CliError("usage: temper health HOST:PORT [--service NAME] [--timeout-ms N]");
  }
  const address = positionals[0];
  const timeout = numberFlag("timeout-ms", values["timeout-ms"], 2000)!;
  if (!(timeout > 0))
    throw new CliError(`--timeout-ms: expected a number > 0, got "${values["timeout-ms"]}"`);
  let status: string;
  try {
    status = String(await checkHealth(address, values.service, timeout));
  } catch (err) {
    throw new CliError(`${address}: ${(err as Error).message}`, 1);
  }
  if (status !== "SERVING") throw new CliError(`${address}: ${status}`, 1);
  process.stdout.write(`${address}: SERVING\n`);
}
