// Who is online, and who is viewing or editing which record, over Realtime presence.
//
// Presence rides on the table channels sync.js already holds (no extra channels, so
// window.supabase.getChannels() stays at exactly 7):
//   realtime:staff    every signed-in tab tracks { staff_id, name, role, tab, online_at }: who is online;
//   realtime:<table>  a tab showing one record (detail page or edit form) tracks
//                     { staff_id, name, tab, id, editing } there, and untracks when it leaves.
// The server drops a tab's presence when its socket closes or stops heartbeating, and every rejoin
// starts empty, so each (re)join tracks again. `tab` tells this tab's own entries apart from the same
// person signed in on another machine.

import { Listeners, newId } from './dom.js'
import { sync } from './sync.js'

const TAB = newId()

/** Every meta of a channel's presence state, flattened (realtime-js groups them by presence key). */
function metas(table) {
  const channel = sync.channel(table)
  if (!channel) return []
  return Object.values(channel.presenceState()).flat()
}

/** One entry per staff member (an editing entry wins over a viewing one), in name order; `self` marks this tab's person. */
function people(list, me) {
  const byStaff = new Map()
  for (const meta of list) {
    if (!meta?.staff_id) continue
    const known = byStaff.get(meta.staff_id)
    if (!known || (meta.editing && !known.editing)) byStaff.set(meta.staff_id, { ...meta, self: meta.staff_id === me?.id })
  }
  return [...byStaff.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)))
}

class Presence {
  constructor() {
    this.me = null
    this.focus = null // { table, id, editing } this tab shows, or null
    this.listeners = new Listeners()
    this.cleanups = []
  }

  start(me) {
    this.stop()
    this.me = me
    this.cleanups.push(
      sync.onJoined((table) => this.track(table)),
      sync.onPresence(() => this.listeners.emit()),
    )
  }

  stop() {
    this.cleanups.splice(0).forEach((fn) => fn())
    this.me = null
    this.focus = null
  }

  /** fn() whenever anyone's presence changes on any table; returns an unsubscribe function. */
  onChange(fn) {
    return this.listeners.add(fn)
  }

  /** Staff members with at least one tab open: [{ staff_id, name, role, self }]. */
  online() {
    return people(metas('staff'), this.me)
  }

  /** Other people on record `id` of `table`: [{ staff_id, name, editing }] (this tab left out). */
  onRecord(table, id) {
    return people(metas(table).filter((m) => m.id === id && m.tab !== TAB), this.me)
  }

  /** This tab now shows record `id` of `table` (editing or only viewing); null leaves it. */
  setFocus(table, id, { editing = false } = {}) {
    const previous = this.focus
    this.focus = table && id ? { table, id, editing } : null
    if (previous && previous.table !== this.focus?.table) this.untrack(previous.table)
    if (this.focus) this.track(this.focus.table)
  }

  /** Leaves `table`/`id` if this tab still shows it (a page or form closing). */
  clearFocus(table, id) {
    if (this.focus?.table === table && this.focus?.id === id) this.setFocus(null, null)
  }

  track(table) {
    const channel = sync.channel(table)
    if (!this.me || !channel || channel.state !== 'joined') return
    const base = { staff_id: this.me.id, name: this.me.full_name, tab: TAB }
    if (table === 'staff') {
      const record = this.focus?.table === 'staff' ? { id: this.focus.id, editing: this.focus.editing } : {}
      channel.track({ ...base, role: this.me.role, online_at: new Date().toISOString(), ...record }).catch(() => {})
    } else if (this.focus?.table === table) {
      channel.track({ ...base, id: this.focus.id, editing: this.focus.editing }).catch(() => {})
    }
  }

  untrack(table) {
    const channel = sync.channel(table)
    if (!channel || channel.state !== 'joined') return
    // The staff channel keeps this tab's "online" entry; others drop it.
    if (table === 'staff') this.track('staff')
    else channel.untrack().catch(() => {})
  }
}

export const presence = new Presence()
