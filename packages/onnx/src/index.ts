export { type GradientOptions, gradients } from "./autodiff.ts";
export * from "./dtype.ts";
export { GRAD_RULES, NO_GRADIENT } from "./grad-rules.ts";
export {
  assertGradients,
  type GradCheckInput,
  type GradCheckResult,
  type GradCheckSpec,
  gradCheck,
  type InitKind,
  makeRng,
} from "./gradcheck.ts";
export {
  type BuildOptions,
  type FileRegion,
  GraphBuilder,
  type GraphOptions,
  type Initializer,
  type Node,
  type Operand,
  type OpOptions,
  Value,
  type WeightData,
} from "./graph.ts";
export type { Attrs, AttrValue, TensorAttr } from "./infer.ts";
export { KERNEL_FLAGS, type MachineInfo, machineInfo } from "./machine.ts";
export { type ExternalTensor, OnnxModel } from "./model.ts";
export {
  type CreateSessionOptions,
  checkProvider,
  type ExecutionProvider,
  Session,
  tensor,
} from "./session.ts";
export type { Dim, Shape } from "./shape.ts";
