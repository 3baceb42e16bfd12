// Erlang-like printing of terms for error messages and logs (bounded: deep or long terms are cut with "...").
import { Atom, BitBinary, ExportFun, Float, Fun, ImproperList, Pid, Port, Ref, Tuple, objectAsMap, type Term } from '../etf/terms.js'

const PLAIN_ATOM = /^[a-z][a-zA-Z0-9_@]*$/
// io_lib:printable_latin1_list/1: printable Latin-1 plus \n \r \t \v \b \f \e.
const PRINTABLE = /^[\x20-\x7e\xa0-\xff\n\r\t\v\b\f\x1b]*$/

function atomText(a: Atom): string {
  return PLAIN_ATOM.test(a.name) ? a.name : `'${a.name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

/** `io_lib:format("~p")`-like text for a term, at most `maxDepth` levels and `maxItems` elements per level. */
export function formatTerm(t: unknown, maxDepth = 8, maxItems = 20): string {
  const go = (t: unknown, depth: number): string => {
    if (depth > maxDepth) return '...'
    const seq = (items: readonly unknown[]): string => {
      const parts = items.slice(0, maxItems).map((x) => go(x, depth + 1))
      if (items.length > maxItems) parts.push('...')
      return parts.join(',')
    }
    if (t instanceof Atom) return atomText(t)
    if (typeof t === 'boolean') return String(t)
    if (typeof t === 'number' || typeof t === 'bigint') return String(t)
    if (t instanceof Float) return t.toString()
    if (typeof t === 'string') {
      // A charlist prints as "text" when io_lib:printable_list/1 would say so, else as the list it is.
      if (t.length === 0) return '[]'
      if (PRINTABLE.test(t)) return JSON.stringify(t.length > 200 ? t.slice(0, 200) + '...' : t)
      return `[${seq([...t].map((c) => c.codePointAt(0)!))}]`
    }
    if (Buffer.isBuffer(t)) {
      const printable = t.length <= 200 && [...t].every((b) => (b >= 0x20 && b < 0x7f) || b === 9 || b === 10 || b === 13)
      if (printable) return `<<${JSON.stringify(t.toString('latin1'))}>>`
      const shown = [...t.subarray(0, maxItems)].join(',')
      return `<<${shown}${t.length > maxItems ? ',...' : ''}>>`
    }
    if (t instanceof BitBinary) {
      // <<1,2,5:3>>: the whole bytes, then the value of the last byte's high `bits` bits.
      const whole = t.data.subarray(0, t.data.length - 1)
      const shown = [...whole.subarray(0, maxItems)].join(',')
      if (whole.length > maxItems) return `<<${shown},...>>`
      const last = `${t.data[t.data.length - 1] >> (8 - t.bits)}:${t.bits}`
      return `<<${shown === '' ? last : `${shown},${last}`}>>`
    }
    if (Array.isArray(t)) return `[${seq(t)}]`
    if (t instanceof ImproperList) return `[${seq(t.elements)}|${go(t.tail, depth + 1)}]`
    if (t instanceof Tuple) return `{${seq(t.elements)}}`
    t = objectAsMap(t as Term) // a plain object prints as the map it encodes to
    if (t instanceof Map) {
      const entries = [...t.entries()]
      const parts = entries.slice(0, maxItems).map(([k, v]) => `${go(k, depth + 1)} => ${go(v, depth + 1)}`)
      if (entries.length > maxItems) parts.push('...')
      return `#{${parts.join(',')}}`
    }
    if (t instanceof Pid || t instanceof Port || t instanceof Ref) return t.toString()
    if (t instanceof ExportFun) return `fun ${atomText(t.module)}:${atomText(t.function)}/${t.arity}`
    if (t instanceof Fun) return `#Fun<${t.module.name}.${t.index}>`
    if (t === undefined) return 'undefined'
    if (t === null) return 'null'
    return String(t)
  }
  return go(t, 0)
}
