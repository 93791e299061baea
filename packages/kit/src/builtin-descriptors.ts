// Descriptors of the services every server carries besides its own: grpc.health.v1.Health and
// server reflection (v1, v1alpha). They are not in the project's descriptor set (buf builds only
// proto/temper), so reflection would not list them and a client that knows only reflection (grpcurl)
// could not call grpc.health.v1.Health/Check. Written here as the upstream .proto files declare them.
import { fromJson, toBinary } from "@bufbuild/protobuf";
import {
  type DescriptorProtoJson,
  type FieldDescriptorProtoJson,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

export const HEALTH_SERVICE = "grpc.health.v1.Health";
export const REFLECTION_SERVICES = [
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
] as const;

type Kind = "string" | "bytes" | "int32" | "bool" | (string & {});

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** One field: `kind` is a scalar or a ".pkg.Message" / ".pkg.Enum" reference (enum when `isEnum`). */
function field(
  name: string,
  number: number,
  kind: Kind,
  options: { repeated?: boolean; oneof?: number; isEnum?: boolean } = {},
): FieldDescriptorProtoJson {
  const scalar: Record<string, FieldDescriptorProtoJson["type"]> = {
    string: "TYPE_STRING",
    bytes: "TYPE_BYTES",
    int32: "TYPE_INT32",
    bool: "TYPE_BOOL",
  };
  const f: FieldDescriptorProtoJson = {
    name,
    number,
    label: options.repeated ? "LABEL_REPEATED" : "LABEL_OPTIONAL",
    type: kind.startsWith(".") ? (options.isEnum ? "TYPE_ENUM" : "TYPE_MESSAGE") : scalar[kind],
    jsonName: camel(name),
  };
  if (kind.startsWith(".")) f.typeName = kind;
  if (options.oneof !== undefined) f.oneofIndex = options.oneof;
  return f;
}

function healthFile(): Uint8Array {
  const pkg = ".grpc.health.v1";
  const messages: DescriptorProtoJson[] = [
    { name: "HealthCheckRequest", field: [field("service", 1, "string")] },
    {
      name: "HealthCheckResponse",
      field: [field("status", 1, `${pkg}.HealthCheckResponse.ServingStatus`, { isEnum: true })],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: 0 },
            { name: "SERVING", number: 1 },
            { name: "NOT_SERVING", number: 2 },
            { name: "SERVICE_UNKNOWN", number: 3 },
          ],
        },
      ],
    },
    { name: "HealthListRequest" },
    {
      name: "HealthListResponse",
      field: [field("statuses", 1, `${pkg}.HealthListResponse.StatusesEntry`, { repeated: true })],
      nestedType: [
        {
          name: "StatusesEntry",
          field: [field("key", 1, "string"), field("value", 2, `${pkg}.HealthCheckResponse`)],
          options: { mapEntry: true },
        },
      ],
    },
  ];
  return toBinary(
    FileDescriptorProtoSchema,
    fromJson(FileDescriptorProtoSchema, {
      name: "grpc/health/v1/health.proto",
      package: "grpc.health.v1",
      messageType: messages,
      service: [
        {
          name: "Health",
          method: [
            {
              name: "Check",
              inputType: `${pkg}.HealthCheckRequest`,
              outputType: `${pkg}.HealthCheckResponse`,
            },
            { name: "List", inputType: `${pkg}.HealthListRequest`, outputType: `${pkg}.HealthListResponse` },
            {
              name: "Watch",
              inputType: `${pkg}.HealthCheckRequest`,
              outputType: `${pkg}.HealthCheckResponse`,
              serverStreaming: true,
            },
          ],
        },
      ],
      syntax: "proto3",
    }),
  );
}

function reflectionFile(version: "v1" | "v1alpha"): Uint8Array {
  const pkg = `.grpc.reflection.${version}` as const;
  const messages: DescriptorProtoJson[] = [
    {
      name: "ServerReflectionRequest",
      field: [
        field("host", 1, "string"),
        field("file_by_filename", 3, "string", { oneof: 0 }),
        field("file_containing_symbol", 4, "string", { oneof: 0 }),
        field("file_containing_extension", 5, `${pkg}.ExtensionRequest`, { oneof: 0 }),
        field("all_extension_numbers_of_type", 6, "string", { oneof: 0 }),
        field("list_services", 7, "string", { oneof: 0 }),
      ],
      oneofDecl: [{ name: "message_request" }],
    },
    {
      name: "ExtensionRequest",
      field: [field("containing_type", 1, "string"), field("extension_number", 2, "int32")],
    },
    {
      name: "ServerReflectionResponse",
      field: [
        field("valid_host", 1, "string"),
        field("original_request", 2, `${pkg}.ServerReflectionRequest`),
        field("file_descriptor_response", 4, `${pkg}.FileDescriptorResponse`, { oneof: 0 }),
        field("all_extension_numbers_response", 5, `${pkg}.ExtensionNumberResponse`, { oneof: 0 }),
        field("list_services_response", 6, `${pkg}.ListServiceResponse`, { oneof: 0 }),
        field("error_response", 7, `${pkg}.ErrorResponse`, { oneof: 0 }),
      ],
      oneofDecl: [{ name: "message_response" }],
    },
    {
      name: "FileDescriptorResponse",
      field: [field("file_descriptor_proto", 1, "bytes", { repeated: true })],
    },
    {
      name: "ExtensionNumberResponse",
      field: [
        field("base_type_name", 1, "string"),
        field("extension_number", 2, "int32", { repeated: true }),
      ],
    },
    {
      name: "ListServiceResponse",
      field: [field("service", 1, `${pkg}.ServiceResponse`, { repeated: true })],
    },
    { name: "ServiceResponse", field: [field("name", 1, "string")] },
    { name: "ErrorResponse", field: [field("error_code", 1, "int32"), field("error_message", 2, "string")] },
  ];
  return toBinary(
    FileDescriptorProtoSchema,
    fromJson(FileDescriptorProtoSchema, {
      name: `grpc/reflection/${version}/reflection.proto`,
      package: `grpc.reflection.${version}`,
      messageType: messages,
      service: [
        {
          name: "ServerReflection",
          method: [
            {
              name: "ServerReflectionInfo",
              inputType: `${pkg}.ServerReflectionRequest`,
              outputType: `${pkg}.ServerReflectionResponse`,
              clientStreaming: true,
              serverStreaming: true,
            },
          ],
        },
      ],
      syntax: "proto3",
    }),
  );
}

let cached: Uint8Array[] | undefined;

/** Serialized FileDescriptorProtos of health and both reflection versions. */
export function builtinDescriptorFiles(): Uint8Array[] {
  cached ??= [healthFile(), reflectionFile("v1"), reflectionFile("v1alpha")];
  return cached;
}
