// Stripe's request bodies: application/x-www-form-urlencoded in bracket notation, as
// Stripe's own libraries write them (`metadata[offer_key]=...`,
// `line_items[0][price_data][recurring][interval]=month`), read back into the nested
// parameters they were written from. Numeric keys make arrays.

export type Params = { [key: string]: Param };
export type Param = string | Params | Param[];

function path(key: string): string[] {
  const first = key.indexOf('[');
  if (first < 0) return [key];
  const out = [key.slice(0, first)];
  const re = /\[([^\]]*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(key.slice(first)))) out.push(m[1]);
  return out;
}

/** `a[b][0][c]=v&...` -> `{ a: { b: [{ c: 'v' }] } }`. */
export function decodeForm(body: string): Params {
  const root: Params = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const parts = path(key);
    let node: Params | Param[] = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1;
      const slot = (node as Record<string, Param>)[part];
      if (last) {
        if (part === '' && Array.isArray(node)) node.push(value);
        else (node as Record<string, Param>)[part] = value;
        break;
      }
      const nextIsIndex = /^\d*$/.test(parts[i + 1]);
      if (slot === undefined || typeof slot === 'string') {
        const fresh: Params | Param[] = nextIsIndex ? [] : {};
        (node as Record<string, Param>)[part] = fresh;
        node = fresh;
      } else {
        node = slot as Params | Param[];
      }
    }
  }
  return root;
}

/** A string parameter, or undefined. */
export function str(p: Param | undefined): string | undefined {
  return typeof p === 'string' ? p : undefined;
}

/** A map parameter (`metadata`), or an empty one. */
export function obj(p: Param | undefined): Params {
  return p && typeof p === 'object' && !Array.isArray(p) ? p : {};
}

/** A list parameter (`line_items`), or an empty one. */
export function list(p: Param | undefined): Param[] {
  if (Array.isArray(p)) return p.filter((x) => x !== undefined);
  return [];
}

/** Every value of a string map (`metadata`), as strings. */
export function strings(p: Param | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(p))) if (typeof v === 'string') out[k] = v;
  return out;
}
