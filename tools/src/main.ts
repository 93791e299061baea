// The `temper` command (tools/bin/temper.mjs runs this file): dispatch.ts holds the command table.
import { runCli } from "./cli.ts";
import { dispatch } from "./dispatch.ts";

await runCli(() => dispatch(process.argv.slice(2)));
