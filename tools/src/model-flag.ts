// `--model ORG/NAME[@REV]` on an interactive command: the Hub id becomes its cached snapshot
// directory, pulled first when it is not there yet (progress on stderr). A directory is left alone.
import { isModelId, resolveModel } from "@temper/hub";
import { hubAction, pullProgress } from "./hub-progress.ts";

/** `argv` with the value of --model (`--model X` or `--model=X`) resolved when it is a Hub id. */
export async function resolveModelFlag(argv: readonly string[]): Promise<string[]> {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    if (out[i] === "--") break;
    const inline = out[i].startsWith("--model=");
    const value = inline ? out[i].slice("--model=".length) : out[i] === "--model" ? out[i + 1] : undefined;
    if (value === undefined || !isModelId(value)) continue;
    const dir = await hubAction(() =>
      resolveModel(value, { pull: true, onProgress: pullProgress(`pull ${value}`) }),
    );
    if (inline) out[i] = `--model=${dir}`;
    else out[i + 1] = dir;
  }
  return out;
}
