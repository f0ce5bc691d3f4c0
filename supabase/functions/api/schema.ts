// A JSON Schema checker for the subset the API's OpenAPI document uses (type, enum,
// required, properties, additionalProperties: false, min/maxLength, pattern, minimum,
// exclusiveMinimum, maximum, format: uuid and date-time, items, maxItems, anyOf). Each problem names the field.

export type Schema = {
  type?: string | string[];
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  format?: string;
  items?: Schema;
  maxItems?: number;
  description?: string;
  $ref?: string;
  anyOf?: Schema[];
  [key: string]: unknown;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/i;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

/** The first problem of `value` against `schema`, naming the field (`path`), or null. */
export function check(
  value: unknown,
  schema: Schema,
  path: string,
  resolve: (ref: string) => Schema = () => ({}),
): string | null {
  if (schema.$ref) return check(value, resolve(schema.$ref), path, resolve);
  const where = path || "body";
  if (schema.anyOf) {
    const problems = schema.anyOf.map((s) => check(value, s, path, resolve));
    if (!problems.includes(null)) return problems[0];
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeMatches(value, t))) {
      return `${where} must be ${types.map((t) => (t === "null" ? "null" : `a${/^[aeiou]/.test(t) ? "n" : ""} ${t}`)).join(" or ")}`;
    }
  }
  if (schema.enum && !schema.enum.includes(value)) {
    return `${where} must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.trim().length < schema.minLength) {
      return schema.minLength === 1 ? `${where} must not be empty` : `${where} is shorter than ${schema.minLength} characters`;
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      return `${where} is longer than ${schema.maxLength} characters`;
    }
    if (schema.format === "uuid" && !UUID.test(value)) return `${where} must be a UUID`;
    if (schema.format === "date-time" && (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))) {
      return `${where} must be a date-time (ISO 8601 with a time zone)`;
    }
    if (schema.pattern && !new RegExp(schema.pattern, "u").test(value)) {
      return `${where} must match ${schema.pattern}`;
    }
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return `${where} must be a finite number`;
    if (schema.minimum !== undefined && value < schema.minimum) return `${where} must be at least ${schema.minimum}`;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
      return `${where} must be greater than ${schema.exclusiveMinimum}`;
    }
    if (schema.maximum !== undefined && value > schema.maximum) return `${where} must be at most ${schema.maximum}`;
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      return `${where} has more than ${schema.maxItems} items`;
    }
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const problem = check(value[i], schema.items, `${where}[${i}]`, resolve);
        if (problem) return problem;
      }
    }
  }
  if (typeOf(value) === "object") {
    const record = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      if (record[name] === undefined) return `${path ? `${path}.` : ""}${name} is required`;
    }
    for (const [name, v] of Object.entries(record)) {
      const field = path ? `${path}.${name}` : name;
      const sub = schema.properties?.[name];
      if (!sub) {
        if (schema.additionalProperties === false) return `${field} is not a known field`;
        continue;
      }
      const problem = check(v, sub, field, resolve);
      if (problem) return problem;
    }
  }
  return null;
}
