// Process groups as kernel's pg (OTP 23+) keeps them: the default scope, a process registered as `pg`, that
// TypeScript processes join and leave and that keeps in step with the `pg` scope of every connected node.
//
// The protocol between scopes (pg.erl, OTP 25), all messages between the scope processes:
//   {discover, Peer}             sent to {pg, Node} when a node comes up (and back to a new Peer): answered
//                                with a sync, and the Peer is monitored and discovered in turn;
//   {'$gen_cast', {sync, Peer, [{Group, [Pid]}]}}   the sender's local members: replaces its view;
//   {join, Peer, Group, Pid | [Pid]}, {leave, Peer, Pid | [Pid], [Group]}   changes, to every known peer.
// A peer's scope going down (or its node) drops its members. erl's scope crashes on a message it does not
// expect, so only these shapes are ever sent to it. erl nodes must run the scope (pg:start(pg), or
// -kernel start_pg true); it works over hidden connections too, since this node discovers the peer itself.
import { Atom, Pid, Ref, Tuple, atom, canonicalKey, tuple, type Term } from '../etf/terms.js'
import { BadArgError } from './errors.js'
import { DOWN, GEN_CAST } from './atoms.js'
import { spawnGenServer } from './genserver.js'
import type { Process } from './process.js'
import type { Runtime } from './runtime.js'
import { pidKey, sameRef } from './ids.js'

export const PG = atom('pg')
const DISCOVER = atom('discover')
const SYNC = atom('sync')
const JOIN = atom('join')
const LEAVE = atom('leave')

/** A group's key: groups are any term, compared as =:=. */
const key = (t: Term): string => canonicalKey(t)

interface Members {
  group: Term
  pids: Pid[]
}

/** Removes one occurrence of each of `pids` from `list` (pg keeps a process once per join). */
function removeEach(list: Pid[], pids: Pid[]): Pid[] {
  const out = [...list]
  for (const p of pids) {
    const k = pidKey(p)
    const i = out.findIndex((x) => pidKey(x) === k)
    if (i >= 0) out.splice(i, 1)
  }
  return out
}

const asPids = (t: Term): Pid[] | undefined =>
  t instanceof Pid ? [t] : Array.isArray(t) && t.every((p) => p instanceof Pid) ? (t as Pid[]) : undefined

/** A scope that has not answered is asked again after 2, 4, 8, 16 and 32 s, then not until the node
 *  reconnects: a node without that scope (a C-node, say) gets six discovers at most. */
const ASK_AGAIN_FIRST_MS = 2000
const ASK_AGAIN_TIMES = 5

/** A pg scope of a runtime: join/leave for its processes, and the members across the cluster. */
export class PgScope {
  private proc: Process | undefined
  /** Local members: pid → the monitor on it and its groups (a group once per join). */
  private readonly local = new Map<string, { ref: Ref; groups: Term[] }>()
  /** Per connected node whose scope has not answered yet: the timer that asks it again. */
  private readonly askAgain = new Map<Atom, NodeJS.Timeout>()
  private readonly localGroups = new Map<string, Members>()
  /** Peer scopes: pid → the monitor on it and its members by group. */
  private readonly peers = new Map<string, { pid: Pid; ref: Ref; groups: Map<string, Members> }>()

  constructor(
    private readonly rt: Runtime,
    readonly name: Atom = PG,
    /** The first wait before asking a silent scope again (then doubled each time). */
    private readonly askAgainFirstMs = ASK_AGAIN_FIRST_MS,
  ) {}

  /** Starts the scope process, registered as the scope's name. */
  start(): void {
    this.proc = spawnGenServer(
      this.rt,
      {
        // What sys:get_state shows: the scope (its groups are pg:which_groups/1's to tell).
        init: () => tuple(atom('state'), this.name),
        handleCast: (req) => this.onCast(req),
        handleInfo: (msg) => this.onInfo(msg),
        terminate: () => {
          // A scope that ended (sys:terminate, a kill) is no longer the node's: pgScope() starts a new one.
          if (this.rt.pgScopes.get(this.name) === this) this.rt.pgScopes.delete(this.name)
          for (const t of this.askAgain.values()) clearTimeout(t)
          this.askAgain.clear()
          this.local.clear()
          this.localGroups.clear()
          this.peers.clear()
        },
      },
      { name: this.name },
    )
  }

  private get self(): Process {
    if (this.proc === undefined || !this.proc.alive) throw new BadArgError(`the pg scope ${this.name.name} is not running`)
    return this.proc
  }

  /** pg:join/2: `pids` (processes of this node) join `group`, once per call. */
  join(group: Term, pids: Pid | Pid[]): void {
    const list = Array.isArray(pids) ? pids : [pids]
    for (const p of list)
      if (!(p instanceof Pid) || !this.rt.isLocalPid(p)) throw new BadArgError(`pg:join: not a local pid: ${String(p)}`)
    if (list.length === 0) return
    const self = this.self
    for (const p of list) {
      const k = pidKey(p)
      let m = this.local.get(k)
      if (m === undefined) {
        m = { ref: self.monitor(p), groups: [] }
        this.local.set(k, m)
      }
      m.groups.push(group)
    }
    const g = this.localGroups.get(key(group)) ?? { group, pids: [] }
    g.pids = [...list, ...g.pids]
    this.localGroups.set(key(group), g)
    this.broadcast(tuple(JOIN, self.pid, group, pids))
  }

  /** pg:leave/2: 'not_joined' when none of `pids` is in `group`. */
  leave(group: Term, pids: Pid | Pid[]): 'ok' | 'not_joined' {
    const list = Array.isArray(pids) ? pids : [pids]
    const gk = key(group)
    const left: Pid[] = []
    for (const p of list) {
      const m = this.local.get(pidKey(p))
      const i = m === undefined ? -1 : m.groups.findIndex((x) => key(x) === gk)
      if (m === undefined || i < 0) continue
      m.groups.splice(i, 1)
      left.push(p)
      if (m.groups.length === 0) {
        this.self.demonitor(m.ref, { flush: true })
        this.local.delete(pidKey(p))
      }
    }
    if (left.length === 0) return 'not_joined'
    this.dropLocal(gk, left)
    this.broadcast(tuple(LEAVE, this.self.pid, pids, [group]))
    return 'ok'
  }

  /** pg:get_members/1: every member of `group`, on this node and on the peers. */
  getMembers(group: Term): Pid[] {
    const gk = key(group)
    const out = [...(this.localGroups.get(gk)?.pids ?? [])]
    for (const peer of this.peers.values()) out.push(...(peer.groups.get(gk)?.pids ?? []))
    return out
  }

  /** pg:get_local_members/1 */
  getLocalMembers(group: Term): Pid[] {
    return [...(this.localGroups.get(key(group))?.pids ?? [])]
  }

  /** pg:which_groups/0: the groups with a member anywhere. */
  whichGroups(): Term[] {
    const out = new Map<string, Term>()
    for (const [k, g] of this.localGroups) out.set(k, g.group)
    for (const peer of this.peers.values()) for (const [k, g] of peer.groups) out.set(k, g.group)
    return [...out.values()]
  }

  /** Whether the scope of this name on `node` is known (it has answered a discover or discovered this one). */
  private knows(node: Atom): boolean {
    for (const peer of this.peers.values()) if (peer.pid.node === node) return true
    return false
  }

  /**
   * A node came up (or this scope started while it was connected): ask its scope for its members (it
   * answers with a sync and discovers this one). A scope started there after the connection came up
   * discovers only the visible nodes (its init's nodes()), so one that has not answered is asked again.
   */
  nodeUp(node: Atom): void {
    this.nodeDown(node)
    this.discover(node)
    this.askLater(node, 0)
  }

  /** The node went away: stop asking it. */
  nodeDown(node: Atom): void {
    clearTimeout(this.askAgain.get(node))
    this.askAgain.delete(node)
  }

  private askLater(node: Atom, times: number): void {
    if (times >= ASK_AGAIN_TIMES) {
      this.askAgain.delete(node)
      return
    }
    const t = setTimeout(() => {
      if (this.knows(node)) this.askAgain.delete(node)
      else {
        this.discover(node)
        this.askLater(node, times + 1)
      }
    }, this.askAgainFirstMs * 2 ** times)
    t.unref()
    this.askAgain.set(node, t)
  }

  private discover(node: Atom): void {
    if (this.proc === undefined || !this.proc.alive) return
    this.proc.send(tuple(this.name, node), tuple(DISCOVER, this.proc.pid))
  }

  private broadcast(msg: Tuple): void {
    const self = this.self
    for (const peer of this.peers.values()) self.send(peer.pid, msg)
  }

  private dropLocal(gk: string, pids: Pid[]): void {
    const g = this.localGroups.get(gk)
    if (g === undefined) return
    g.pids = removeEach(g.pids, pids)
    if (g.pids.length === 0) this.localGroups.delete(gk)
  }

  /** {sync, Peer, [{Group, [Pid]}]}: the peer's members, replacing what was known of it. */
  private onCast(req: Term): void {
    if (!(req instanceof Tuple) || req.length !== 3 || req.get(0) !== SYNC || !(req.get(1) instanceof Pid)) return
    const groups = req.get(2)
    if (!Array.isArray(groups)) return
    const view = new Map<string, Members>()
    for (const g of groups) {
      const pids = g instanceof Tuple && g.length === 2 ? asPids(g.get(1)) : undefined
      if (pids === undefined) return // not pg's shape: keep the old view
      view.set(key((g as Tuple).get(0)), { group: (g as Tuple).get(0), pids: [...pids] })
    }
    this.peerOf(req.get(1) as Pid).groups = view
  }

  private peerOf(pid: Pid): { pid: Pid; ref: Ref; groups: Map<string, Members> } {
    const k = pidKey(pid)
    let peer = this.peers.get(k)
    if (peer === undefined) {
      peer = { pid, ref: this.self.monitor(pid), groups: new Map() }
      this.peers.set(k, peer)
    }
    return peer
  }

  private onInfo(msg: Term): void {
    if (!(msg instanceof Tuple)) return
    const tag = msg.get(0)
    if (tag === DISCOVER && msg.length === 2 && msg.get(1) instanceof Pid) {
      const peer = msg.get(1) as Pid
      const known = this.peers.has(pidKey(peer))
      const self = this.self
      const mine = [...this.localGroups.values()].map((g) => tuple(g.group, [...g.pids]))
      self.send(peer, tuple(GEN_CAST, tuple(SYNC, self.pid, mine)))
      if (!known) {
        this.peerOf(peer)
        self.send(peer, tuple(DISCOVER, self.pid))
      }
    } else if (tag === JOIN && msg.length === 4 && msg.get(1) instanceof Pid) {
      const peer = this.peers.get(pidKey(msg.get(1) as Pid))
      const pids = asPids(msg.get(3))
      if (peer === undefined || pids === undefined) return
      const gk = key(msg.get(2))
      const g = peer.groups.get(gk) ?? { group: msg.get(2), pids: [] }
      g.pids = [...pids, ...g.pids]
      peer.groups.set(gk, g)
    } else if (tag === LEAVE && msg.length === 4 && msg.get(1) instanceof Pid) {
      const peer = this.peers.get(pidKey(msg.get(1) as Pid))
      const pids = asPids(msg.get(2))
      const groups = msg.get(3)
      if (peer === undefined || pids === undefined || !Array.isArray(groups)) return
      for (const group of groups) {
        const gk = key(group)
        const g = peer.groups.get(gk)
        if (g === undefined) continue
        g.pids = removeEach(g.pids, pids)
        if (g.pids.length === 0) peer.groups.delete(gk)
      }
    } else if (tag === DOWN && msg.length === 5 && msg.get(3) instanceof Pid) {
      const pid = msg.get(3) as Pid
      const k = pidKey(pid)
      const member = this.local.get(k)
      if (member !== undefined && msg.get(1) instanceof Ref && sameRef(member.ref, msg.get(1) as Ref)) {
        // A local member exited: it leaves all its groups, and the peers are told.
        this.local.delete(k)
        const groups = member.groups
        for (const group of groups) this.dropLocal(key(group), [pid])
        // Every group once per join, as pg sends it (a peer drops one membership per listed group).
        this.broadcast(tuple(LEAVE, this.self.pid, pid, groups))
        return
      }
      const peer = this.peers.get(k)
      if (peer !== undefined) this.peers.delete(k)
    }
  }
}

/** Creates and starts a pg scope on a runtime (the default one is `pg`), listed in rt.pgScopes. */
export function startPg(rt: Runtime, name: Atom = PG, askAgainFirstMs?: number): PgScope {
  const scope = new PgScope(rt, name, askAgainFirstMs)
  scope.start()
  rt.pgScopes.set(name, scope)
  return scope
}
