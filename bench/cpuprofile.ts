// Reading a `node --cpu-prof` profile, shared by bench/profile.ts and bench/drivers-profile.ts: each script
// says how a frame's place is named (`where`), grouped (`area`) and which places count as its own code
// (`isCaller`); this attributes the samples inside measured windows to functions, areas and callers.

export interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}
export interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/**
 * A readable place for a frame: `file(url)` (the url without file://) with the line, a node: module as it
 * is, or the V8 pseudo-frame ((garbage collector), (program), ...) / (native) for a frame without a url.
 */
export function where(cf: CallFrame, file: (url: string) => string): string {
  const url = cf.url.replace(/^file:\/\//, '')
  if (url === '') return cf.functionName.startsWith('(') ? cf.functionName : '(native)'
  const f = file(url)
  if (f.startsWith('node:')) return f
  return `${f}:${cf.lineNumber + 1}`
}

export interface AreaStyle {
  /** The area of a node: module, from its first path segment (net, stream, ...). */
  node: (module: string) => string
  /** Name node_modules/<package> by its package (else anything under node_modules is `node_modules`). */
  packages: boolean
}

/** Source area of a place from `where`: the V8 pseudo-frame, the node: module, src/<folder> or bench, the package, or the file. */
export function area(w: string, style: AreaStyle): string {
  if (w.startsWith('(')) return w
  if (w.startsWith('node:')) return style.node(w.replace(/^node:(internal\/)?/, '').split('/')[0])
  if (style.packages) {
    const nm = /^node_modules\/((@[^/]+\/)?[^/]+)/.exec(w)
    if (nm) return nm[1]
  }
  const m = /^(src\/[^/]+|bench)\//.exec(w)
  if (m) return m[1]
  if (!style.packages && w.includes('node_modules')) return 'node_modules'
  return w.split(':')[0]
}

export interface Places {
  where: (cf: CallFrame) => string
  area: (w: string) => string
  /** Whether a place is the script's own code: the nearest one up the stack is charged with the self time below it. */
  isCaller: (w: string) => boolean
  /** The caller of a sample with no such frame on its stack. */
  noCaller: string
}

export interface Attribution {
  busyUs: number
  idleUs: number
  byArea: Map<string, number>
  byFunction: Map<string, number>
  /** Self time charged to the nearest caller frame up the stack (so writev counts for Connection.write). */
  byCaller: Map<string, number>
}

/** Self time of the samples inside the windows ([from, to) in the profile's µs), by area, function and caller. */
export function attribute(profile: CpuProfile, windows: [number, number][], places: Places): Attribution {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const callerOf = new Map<number, string>()
  const caller = (id: number): string => {
    const known = callerOf.get(id)
    if (known !== undefined) return known
    let r = places.noCaller
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame
      const w = places.where(cf)
      if (places.isCaller(w)) {
        r = `${cf.functionName || '(anonymous)'}  ${w}`
        break
      }
    }
    callerOf.set(id, r)
    return r
  }
  const res: Attribution = { busyUs: 0, idleUs: 0, byArea: new Map(), byFunction: new Map(), byCaller: new Map() }
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    // A sample's time is the gap to the next one.
    const dt = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0
    if (dt <= 0 || !windows.some(([a, b]) => t >= a && t < b)) continue
    const node = byId.get(profile.samples[i])
    if (node === undefined) continue
    const cf = node.callFrame
    if (cf.functionName === '(idle)') {
      res.idleUs += dt
      continue
    }
    res.busyUs += dt
    const w = places.where(cf)
    add(res.byArea, places.area(w), dt)
    add(res.byFunction, `${cf.functionName || '(anonymous)'}  ${w}`, dt)
    add(res.byCaller, caller(node.id), dt)
  }
  return res
}

/** The n largest entries. */
export function top(m: Map<string, number>, n: number): Array<[string, number]> {
  return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
}
