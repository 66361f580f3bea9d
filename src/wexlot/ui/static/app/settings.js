// Realtime settings (/settings, admins): which tables broadcast their changes to open pages, our
// equivalent of Supabase's Database → Replication switches. Reads and writes
// /realtime/v1/api/publication: GET → { tables: [{ name, published }] }, PUT { tables: [names] } → same.
//
// Each switch saves at once. The PUT sends the whole list, so it is computed from a fresh GET: two
// admins switching different tables at the same time do not undo each other.

import { realtimeApi } from './client.js'
import { h, uid } from './dom.js'
import { notify } from './notices.js'
import { TABLES, tableTitle } from './schema.js'

const TIMEOUT_MS = 15_000
const REFRESH_MS = 15_000 // another admin may switch tables too

async function readBody(response) {
  const body = await response.json().catch(() => ({}))
  if (!response.ok) {
    const reason = response.status === 403 ? 'only admins may change this' : (body.message ?? body.msg ?? `HTTP ${response.status}`)
    throw new Error(reason)
  }
  return body
}

async function getPublication() {
  return readBody(await realtimeApi('publication', { timeoutMs: TIMEOUT_MS }))
}

async function putPublication(tables) {
  return readBody(await realtimeApi('publication', { method: 'PUT', body: { tables }, timeoutMs: TIMEOUT_MS }))
}

const listNames = (names) => {
  if (names.length <= 1) return names.join('')
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
}

export class RealtimeSettings {
  constructor({ me }) {
    this.me = me
    this.published = null // Map name -> boolean, as the server last said
    this.busy = false
    this.destroyed = false
    const headingId = uid('settings-title')
    const introId = uid('settings-intro')
    this.heading = h('h1', { id: headingId, tabindex: '-1' }, 'Realtime settings')
    this.warning = h('div', { class: 'admin-warning', role: 'status', hidden: true, dataset: { testid: 'publication-warning' } })
    this.error = h('p', { class: 'form-error', role: 'alert', hidden: true })
    this.saved = h('p', { class: 'save-status', role: 'status', 'aria-live': 'polite' })
    this.switches = new Map()
    const rows = TABLES.map((table) => {
      const id = uid(`publish-${table}`)
      const hintId = `${id}-hint`
      const input = h('input', {
        id, type: 'checkbox', role: 'switch', class: 'switch', disabled: true,
        'aria-describedby': hintId, dataset: { table },
        onchange: () => this.toggle(table, input.checked),
      })
      this.switches.set(table, input)
      return h('li', { class: 'publish-row', dataset: { table } },
        input,
        h('label', { for: id }, `Broadcast ${tableTitle(table).toLowerCase()}`),
        h('span', { id: hintId, class: 'hint' }, `Channel realtime:${table}`),
      )
    })
    this.el = h('section', { class: 'admin-page settings-page', 'aria-labelledby': headingId, dataset: { state: 'loading' } },
      h('div', { class: 'view-head' }, this.heading),
      h('p', { id: introId, class: 'intro' },
        'Choose which tables send their changes to every open page as they happen. ',
        'A table that is off still saves everything; other machines see its changes only after they reload.'),
      this.error,
      this.warning,
      h('fieldset', { class: 'panel publish-list', 'aria-describedby': introId },
        h('legend', {}, 'Tables that broadcast changes'),
        h('ul', {}, rows)),
      h('div', { class: 'settings-actions' },
        h('button', { type: 'button', class: 'button-quiet', onclick: () => this.load({ announce: true }) }, 'Reload settings'),
        this.saved),
    )
  }

  async start() {
    await this.load()
    if (this.destroyed) return // left while loading: no timer to leak
    this.timer = setInterval(() => { if (!this.busy && !document.hidden) this.load() }, REFRESH_MS)
  }

  destroy() {
    this.destroyed = true
    clearInterval(this.timer)
  }

  async load({ announce = false } = {}) {
    try {
      const body = await getPublication()
      if (this.destroyed || this.busy) return
      this.apply(body)
      this.showError(null)
      if (announce) this.saved.textContent = 'Settings reloaded.'
    } catch (err) {
      if (!this.destroyed) this.showError(`Could not read the realtime settings: ${err.message}`)
    } finally {
      if (!this.destroyed) this.el.dataset.state = 'ready'
    }
  }

  async toggle(table, on) {
    if (this.busy) return
    this.busy = true
    this.setDisabled(true)
    this.showError(null)
    this.saved.textContent = 'Saving…'
    const title = tableTitle(table)
    try {
      const current = await getPublication()
      const names = new Set(current.tables.filter((t) => t.published).map((t) => t.name))
      if (on) names.add(table)
      else names.delete(table)
      const body = await putPublication([...names].sort())
      if (this.destroyed) return
      this.apply(body)
      this.saved.textContent = `${title} ${on ? 'broadcasts its changes again' : 'no longer broadcasts its changes'}.`
      notify(`Realtime for ${title.toLowerCase()} turned ${on ? 'on' : 'off'}`)
    } catch (err) {
      if (this.destroyed) return
      this.saved.textContent = ''
      this.showError(`Could not turn ${title.toLowerCase()} ${on ? 'on' : 'off'}: ${err.message}`)
      this.render() // back to what the server last said
    } finally {
      this.busy = false
      if (!this.destroyed) this.setDisabled(false)
    }
  }

  apply(body) {
    this.published = new Map(body.tables.map((t) => [t.name, Boolean(t.published)]))
    this.render()
  }

  render() {
    if (!this.published) return
    for (const [table, input] of this.switches) {
      input.checked = this.published.get(table) ?? false
      input.disabled = this.busy
      input.closest('li').dataset.published = String(input.checked)
    }
    const off = TABLES.filter((t) => this.published.get(t) === false).map((t) => tableTitle(t).toLowerCase())
    this.warning.hidden = off.length === 0
    this.warning.replaceChildren(
      h('strong', {}, off.length === 1 ? 'One table is not live. ' : `${off.length} tables are not live. `),
      `Other machines will not see changes to ${listNames(off)} live; they see them only after reloading the page.`,
    )
  }

  setDisabled(disabled) {
    for (const input of this.switches.values()) input.disabled = disabled || !this.published
  }

  showError(message) {
    this.error.hidden = !message
    this.error.textContent = message ?? ''
  }
}
