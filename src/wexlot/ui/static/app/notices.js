// Short notices in the corner ("Jane Smith added by Priya Shah"), announced politely to screen readers.
// Bursts (a catch-up, an import) are folded into one summary instead of a wall of notices.

import { h } from './dom.js'

const SHOW_MS = 5000
const MAX_VISIBLE = 4
const BURST_MS = 250
const BURST_LIMIT = 3

let queue = []
let timer = null

function region() {
  return document.getElementById('notices')
}

function show(text, kind) {
  const host = region()
  if (!host) return
  const el = h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null }, text)
  host.append(el)
  while (host.children.length > MAX_VISIBLE) host.firstElementChild.remove()
  setTimeout(() => el.remove(), kind === 'error' ? SHOW_MS * 2 : SHOW_MS)
}

function flush() {
  timer = null
  const items = queue
  queue = []
  const groups = new Map()
  for (const item of items) {
    const key = item.group ?? item.text
    groups.set(key, [...(groups.get(key) ?? []), item])
  }
  for (const [, group] of groups) {
    if (group.length > BURST_LIMIT && group[0].summary) show(group[0].summary(group.length), group[0].kind)
    else group.forEach((item) => show(item.text, item.kind))
  }
}

/**
 * notify('Saved') or notify(text, { kind: 'error' }) or, for changes that may come in bursts,
 * notify(text, { group: 'contacts', summary: (n) => `${n} contacts changed` }).
 */
export function notify(text, { kind = 'info', group = null, summary = null } = {}) {
  queue.push({ text, kind, group, summary })
  if (!timer) timer = setTimeout(flush, BURST_MS)
}

export function clearNotices() {
  queue = []
  region()?.replaceChildren()
}
