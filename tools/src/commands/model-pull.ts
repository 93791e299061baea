// `temper model pull REPO_ID[@REVISION]`: a model's config, tokenizer and weights from the Hub
// into the standard Hub cache; prints the snapshot directory (what --model takes).
import { hubEnv, parseRepoId, pullModel, showRepo } from "@temper/hub";
import { CliError, parseFlags } from "../cli.ts";
import { bytes, hubAction, pullProgress } from "../hub-progress.ts";

export const PULL_USAGE = "temper model pull ORG/NAME[@REVISION] [--verify]";

export const PULL_DETAILS = `Fetches what Temper reads (config.json, generation_config.json, tokenizer files, *.safetensors
and their index) into the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
~/.cache/huggingface/hub), resuming interrupted downloads and checking every file's hash; files
already there are not fetched again. Prints the snapshot directory on stdout.

A Hub id works wherever a command takes a model directory (and as an experiment's model:): an
interactive command pulls it on first use.

options:
  --verify   hash the files already in the cache again (default: trusted when their size matches)

environment: HF_ENDPOINT (a mirror), HF_TOKEN (gated or private models), HF_HUB_OFFLINE=1 (the
cache alone, no network), HF_HUB_CACHE, HF_HOME`;

export async function runPull(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(argv, { verify: { type: "boolean" } }, true);
  await hubAction(async () => {
    if (positionals.length !== 1) throw new CliError(`usage: ${PULL_USAGE}`);
    const ref = parseRepoId(positionals[0]);
    const env = hubEnv();
    const r = await pullModel(ref, {
      env,
      verify: values.verify,
      onProgress: pullProgress(`pull ${showRepo(ref)}`),
    });
    const size = r.files.reduce((s, f) => s + f.size, 0);
    const fetched = r.files.reduce((s, f) => s + f.fetched, 0);
    process.stderr.write(
      env.offline
        ? `temper: ${showRepo(ref)} at ${r.commit} from the cache (HF_HUB_OFFLINE=1)\n`
        : `temper: ${showRepo(ref)} at ${r.commit}: ${r.files.length} files, ${bytes(size)} (${bytes(fetched)} fetched)\n`,
    );
    process.stdout.write(`${r.dir}\n`);
  });
}
