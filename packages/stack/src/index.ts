// A local Temper stack as a library: the service registry, the one launcher of service processes,
// the supervised stack (`temper stack`, `temper run`, the whole-stack tests) and its secrets.
export { StackError } from "./errors.ts";
export { type LaunchOptions, launchService, ROOT, serviceEntry } from "./launch.ts";
export { ephemeralPortRange, freePort, freeStackOffset, portFree } from "./ports.ts";
export {
  ensureNatsServer,
  type Instance,
  type ServiceRow,
  type Stack,
  type StackOptions,
  type StackSecurity,
  stackModel,
  startStack,
} from "./runtime.ts";
export * from "./secrets.ts";
export * from "./services.ts";
