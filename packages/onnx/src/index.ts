export * from "./dtype.ts";
export { type Attrs, type AttrValue, type TensorAttr } from "./infer.ts";
export {
  type BuildOptions,
  GraphBuilder,
  type GraphOptions,
  type Initializer,
  type Node,
  type Operand,
  type OpOptions,
  Value,
  type WeightData,
} from "./graph.ts";
export { type ExternalTensor, OnnxModel } from "./model.ts";
export { type Dim, type Shape } from "./shape.ts";
export { type CreateSessionOptions, checkProvider, type ExecutionProvider, Session, tensor } from "./session.ts";
