// Map keys must be distinct as Erlang terms (binary_to_term refuses a map with two =:= keys). JS Map keys
// are distinct by identity, which is the same thing for atoms (interned), booleans, numbers and strings among
// themselves, but not for compound keys ({1} built twice), 1 vs 1n, two Float(1.0) boxes, or "ab" vs [97, 98].
// The encoder calls assertDistinctKeys only for maps holding such keys.
import { Atom, BitBinary, ExportFun, Float, Fun, ImproperList, Pid, Port, Ref, Tuple } from './terms.js'
import { EncodeError } from './errors.js'

const MAX_KEY_DEPTH = 1000

/** True when identity of this JS key does not settle equality with the other keys. */
export function keyNeedsCheck(k: unknown): boolean {
  return typeof k === 'bigint' || (typeof k === 'object' && k !== null && !(k instanceof Atom))
}

type Canon = string | number | Canon[]

/** A structure equal (as JSON) for terms Erlang finds =:=. */
function canon(t: unknown, depth: number): Canon {
  if (depth > MAX_KEY_DEPTH) throw new EncodeError(`a map key nests deeper than ${MAX_KEY_DEPTH}`)
  const d = depth + 1
  if (typeof t === 'number') return Number.isInteger(t) ? `i${t}` : `f${t}`
  if (typeof t === 'bigint') return `i${t}`
  if (typeof t === 'boolean') return `a${t}`
  if (t instanceof Atom) return `a${t.name}`
  if (typeof t === 'string') return ['l', [...t].map((c) => `i${c.codePointAt(0)}`)]
  if (t instanceof Float) return `f${t.value === 0 ? 0 : t.value}`
  if (Array.isArray(t)) return ['l', t.map((x) => canon(x, d))]
  if (t instanceof ImproperList) {
    const tail = canon(t.tail, d)
    const head = t.elements.map((x) => canon(x, d))
    // [1 | [2]] is [1, 2]: a list tail continues the list.
    if (Array.isArray(tail) && tail[0] === 'l') return ['l', [...head, ...(tail[1] as Canon[])], ...(tail.length > 2 ? [tail[2]] : [])]
    return ['l', head, tail]
  }
  if (t instanceof Tuple) return ['t', t.elements.map((x) => canon(x, d))]
  if (t instanceof Uint8Array) return `b${Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('hex')}`
  if (t instanceof BitBinary) return `B${t.bits}:${t.data.toString('hex')}`
  if (t instanceof Map) {
    const entries = [...t].map(([k, v]) => JSON.stringify([canon(k, d), canon(v, d)])).sort()
    return ['m', entries]
  }
  if (t instanceof Pid) return `p${t.node.name}.${t.id}.${t.serial}.${t.creation}`
  if (t instanceof Port) return `o${t.node.name}.${t.id}.${t.creation}`
  if (t instanceof Ref) return `r${t.node.name}.${t.creation}.${t.ids.join('.')}`
  if (t instanceof ExportFun) return `e${t.module.name}:${t.function.name}/${t.arity}`
  if (t instanceof Fun) return ['F', t.module.name, t.uniq.toString('hex'), t.index, t.pid.toString(), t.freeVars.map((x) => canon(x, d))]
  if (t !== null && typeof t === 'object') {
    const entries = Object.entries(t).map(([k, v]) => JSON.stringify([`a${k}`, canon(v, d)])).sort()
    return ['m', entries]
  }
  throw new EncodeError(`cannot encode a map key of type ${typeof t}`)
}

/** Throws EncodeError when two keys of `map` are the same Erlang term. */
export function assertDistinctKeys(map: Map<unknown, unknown>): void {
  const seen = new Set<string>()
  for (const k of map.keys()) {
    const c = JSON.stringify(canon(k, 0))
    if (seen.has(c)) throw new EncodeError(`a map has two keys that are the same Erlang term (${c.length > 80 ? c.slice(0, 80) + '…' : c})`)
    seen.add(c)
  }
}
