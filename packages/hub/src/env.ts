// The Hub's environment conventions, as the Python client and transformers read them.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export interface HubEnv {
  /** HF_ENDPOINT, without a trailing slash (default https://huggingface.co). */
  endpoint: string;
  /** HF_TOKEN (unset: anonymous). */
  token?: string;
  /** HF_HUB_OFFLINE=1: answer from the cache only. */
  offline: boolean;
  /** HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir: string;
}

const truthy = (v: string | undefined) =>
  v !== undefined && ["1", "true", "yes", "on"].includes(v.toLowerCase());

export function hubEnv(env: NodeJS.ProcessEnv = process.env): HubEnv {
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
  return {
    endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    token: env.HF_TOKEN || undefined,
    offline: truthy(env.HF_HUB_OFFLINE),
    cacheDir: resolve(env.HF_HUB_CACHE || join(home, "hub")),
  };
}
