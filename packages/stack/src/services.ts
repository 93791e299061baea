// The services of the local stack: name, default port, and how each is started. A service is
// "implemented" once services/<name>/src/main.ts exists; `temper stack` starts those only.
import { existsSync } from "node:fs";
import { serviceEntry } from "./launch.ts";

export interface ServiceSpec {
  name: string;
  /** Default gRPC port on loopback (docs/architecture.md, Services and ports). */
  port: number;
  summary: string;
}

export const NATS_DEFAULT_PORT = 4222;

/** In start order: reward sources first, then what calls them. */
export const SERVICES: readonly ServiceSpec[] = [
  {
    name: "reward-correctness",
    port: 15051,
    summary: "answer extraction: correctness_hard, correctness_soft, format",
  },
  { name: "reward-perplexity", port: 15052, summary: "perplexity from completion logprobs" },
  { name: "reward-reasoning", port: 15053, summary: "checked arithmetic, structure, repetition, length" },
  {
    name: "reward-consistency",
    port: 15054,
    summary: "agreement within the group and with its own equations",
  },
  { name: "scheduler", port: 15060, summary: "reward router: blends sources, advantages" },
  { name: "rollout", port: 15070, summary: "generation with hot-swapped adapters" },
  { name: "learner", port: 15080, summary: "GRPO updates of LoRA adapters" },
  { name: "orchestrator", port: 15090, summary: "runs experiments end to end" },
];

export function implementedServices(): ServiceSpec[] {
  return SERVICES.filter((s) => existsSync(serviceEntry(s.name)));
}

/** "reward-correctness" -> "REWARD_CORRECTNESS_ADDR": every service gets every peer's address. */
export function addressVariable(name: string): string {
  return `${name.toUpperCase().replace(/-/g, "_")}_ADDR`;
}

/** Services a stack may run several of: stateless, so any instance serves any call. */
export const REPLICABLE: ReadonlySet<string> = new Set([
  "rollout",
  "reward-correctness",
  "reward-perplexity",
  "reward-reasoning",
  "reward-consistency",
]);

/** Replica k (from 0) of a service: its name (`rollout`, `rollout-2`, …) and port (+1000 per replica). */
export function replica(spec: ServiceSpec, k: number, portOffset: number): { name: string; port: number } {
  return { name: k === 0 ? spec.name : `${spec.name}-${k + 1}`, port: spec.port + portOffset + 1000 * k };
}

/**
 * The environment `temper stack` gives a service: its port, NATS, and every service's endpoint
 * (`endpoints`: service name → host:port, or an ip:port list where it runs replicas).
 */
export function stackEnv(
  port: number,
  endpoints: Record<string, string>,
  natsUrl: string,
): Record<string, string> {
  const env: Record<string, string> = {
    HOST: "127.0.0.1",
    PORT: String(port),
    NATS_URL: natsUrl,
  };
  for (const s of SERVICES) env[addressVariable(s.name)] = endpoints[s.name];
  return env;
}
