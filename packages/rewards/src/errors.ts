/** A rejected input field, for INVALID_ARGUMENT (gRPC) or a one-line CLI error. */
export interface FieldError {
  /** Path of the offending field, e.g. "groups[2].completions[0].text" or "structure.hybrid.alpha". */
  field: string;
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: FieldError };

export function fieldError(field: string, message: string): { ok: false; error: FieldError } {
  return { ok: false, error: { field, message } };
}

/** "field: message", the one-line form. */
export function formatFieldError(e: FieldError): string {
  return `${e.field}: ${e.message}`;
}
