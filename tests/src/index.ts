// Test harness for whole-stack tests: real nats-server, real service processes, clients.
export {
  checkHealth,
  createClient,
  GrpcError,
  type PromiseClient,
  Status,
  waitForServing,
} from "@temper/kit";
export { freeStackOffset } from "@temper/stack";
export { Harness } from "./harness.ts";
export {
  freePort,
  repoRoot,
  type StartServiceOptions,
  serviceEntry,
  startNats,
  startService,
  type TestNats,
  TestService,
} from "./processes.ts";
export { additionProblems, type SpecBase, STRUCTURES, testRunSpec, tinyPolicyModel } from "./run-spec.ts";
export { startTestStack } from "./stack-ports.ts";
