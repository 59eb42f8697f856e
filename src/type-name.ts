/** A short name for the type of a value, for error messages. A file of its own, imported by all. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
