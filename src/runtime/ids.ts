// Keys and comparisons for pids and refs, and name coercion.
import { Atom, atom, type Pid, type Ref } from '../etf/terms.js'
export { samePid, sameRef } from '../etf/terms.js'
import { BadArgError } from './errors.js'
import { formatTerm } from './format.js'

export type Name = Atom | string

export const refKey = (r: Ref): string => `${r.node.name}\0${r.creation}\0${r.ids.join('.')}`
export const pidKey = (p: Pid): string => `${p.node.name}\0${p.id}.${p.serial}.${p.creation}`

/** An atom from an atom or a string; BadArgError otherwise. */
export function toAtom(n: unknown, what = 'name'): Atom {
  if (n instanceof Atom) return n
  if (typeof n === 'string') return atom(n)
  throw new BadArgError(`${what} must be an atom or a string, got ${formatTerm(n)}`)
}
