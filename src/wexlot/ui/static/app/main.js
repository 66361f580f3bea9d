// The app shell: session, navigation, connection indicator, and which page is shown.
//
// Pages are client-side routes (/dashboard, /contacts, …); the server answers every such path with
// the same shell, so a reload or a shared link opens the same page.

import { supabase } from './client.js'
import './csv.js' // list extras: export, import
import { Dashboard, clearFeed, recordChange } from './dashboard.js'
import { DetailView } from './detail.js'
import { h, mount } from './dom.js'
import { ListView } from './listview.js'
import { lookups } from './lookups.js'
import { clearNotices, notify } from './notices.js'
import { Pipeline } from './pipeline.js'
import { presence } from './presence.js'
import { DEFS, TABLES } from './schema.js'
import { RealtimeSettings } from './settings.js'
import { INACTIVE_MESSAGE, explainAuthError, renderSignIn } from './signin.js'
import './staffadmin.js' // list extras: invite, role, deactivate, temporary password
import { StatusPage } from './status.js'
import { sync } from './sync.js'
import { Tasks } from './tasks.js'

const main = document.getElementById('main')
const nav = document.getElementById('nav')
const navToggle = document.getElementById('nav-toggle')
const connection = document.getElementById('connection')
const account = document.getElementById('account')

const SESSION_ENDED_MESSAGE = 'Your session has ended: you were signed out elsewhere or your password was changed. Sign in again.'
const DEACTIVATED_MESSAGE = 'Your account was deactivated, so this screen no longer receives data. Ask an administrator if this is a mistake.'

let me = null // the signed-in staff row
let view = null
let phase = 'out' // out | entering | in

// Pages other than the table lists: /<name> → { title, adminOnly, make({ me, params, onParams }) }.
// A page object has `el`, `heading`, `start()` (async) and `destroy()`.
const PAGES = {
  dashboard: { title: 'Dashboard', make: (ctx) => new Dashboard(ctx) },
  pipeline: { title: 'Pipeline', make: (ctx) => new Pipeline(ctx) },
  tasks: { title: 'Tasks', make: (ctx) => new Tasks(ctx) },
  settings: { title: 'Realtime settings', adminOnly: true, make: (ctx) => new RealtimeSettings(ctx) },
  status: { title: 'Status', make: (ctx) => new StatusPage(ctx) },
}

// --- live data wiring (once) ----------------------------------------------------------------------

sync.onChange((change) => {
  lookups.apply(change)
  recordChange(change)
})
sync.onState((state, detail) => {
  connection.dataset.state = state
  connection.querySelector('.label').textContent = detail
  connection.title = `Real-time updates: ${detail}`
  document.body.dataset.connection = state
})
// Tables an admin turned off in Realtime settings: say that this screen is not live for them.
const notLive = document.getElementById('not-live')
sync.onPublication((off) => {
  const titles = TABLES.filter((t) => off.has(t)).map((t) => DEFS[t].title)
  notLive.hidden = titles.length === 0
  notLive.textContent = titles.length
    ? `Not live: ${titles.join(', ')}. Broadcasting is turned off in Realtime settings, so changes made on other machines appear only after a reload.`
    : ''
})
sync.onResync((table) => {
  if (TABLES.includes(table)) lookups.loadAll(table).catch(() => {})
})

// The server closed a channel: access was revoked (deactivated) or changed. Ask the auth API which.
let checkingAccess = false
sync.onClosedByServer(async () => {
  if (checkingAccess || phase !== 'in') return
  checkingAccess = true
  try {
    const { error } = await supabase.auth.getUser()
    if (phase !== 'in') return
    if (error?.code === 'user_banned') {
      await signOutLocally()
      leave(DEACTIVATED_MESSAGE, 'error')
      return
    }
    if (error && error.name !== 'AuthRetryableFetchError') {
      // Signed out elsewhere, or an administrator set a new password: the session no longer exists
      // (supabase-js reports the server's 403 session_not_found as AuthSessionMissingError, status 400).
      await signOutLocally()
      leave(SESSION_ENDED_MESSAGE, 'error')
      return
    }
    // Still allowed (e.g. the role changed): enter again, so that the profile, names, channels and page
    // all start over with the current rights (the page's fresh load includes whatever was missed).
    await sync.stop()
    view?.destroy()
    view = null
    lookups.clear()
    try {
      await enter()
    } catch (err) {
      leave(err.message, 'error')
    }
  } finally {
    checkingAccess = false
  }
})

// --- session --------------------------------------------------------------------------------------

async function signOutLocally() {
  presence.stop()
  await sync.stop()
  await supabase.auth.signOut({ scope: 'local' }).catch(() => {})
}

/** Signs the current session in to the app: staff profile, lookups, realtime, then the page. */
async function enter() {
  phase = 'entering'
  const { data: userData, error: userError } = await supabase.auth.getUser()
  if (userError) {
    await signOutLocally()
    phase = 'out'
    throw new Error(explainAuthError(userError))
  }
  const { data: staff, error } = await supabase.from('staff').select('*').eq('user_id', userData.user.id).maybeSingle()
  if (error || !staff || !staff.is_active) {
    await signOutLocally()
    phase = 'out'
    throw new Error(error ? `Could not load your profile: ${error.message}` : INACTIVE_MESSAGE)
  }
  me = staff
  document.getElementById('account-name').textContent = `${me.full_name} · ${me.role}`
  document.body.dataset.auth = 'in'
  nav.hidden = false
  navToggle.hidden = false
  connection.hidden = false
  account.hidden = false
  for (const item of nav.querySelectorAll('[data-admin-only]')) item.hidden = me.role !== 'admin'
  presence.start(me)
  await sync.start()
  phase = 'in'
  if (location.pathname === '/' || location.pathname === '') history.replaceState(null, '', '/dashboard')
  route()
  // Names load once their channels have joined (no rename falls between the snapshot and the live stream);
  // the page shows them as they arrive.
  lookups.preload().catch((err) => notify(`Some names could not be loaded: ${err.message}`, { kind: 'error' }))
}

function leave(message, kind = 'info') {
  phase = 'out'
  me = null
  presence.stop()
  view?.destroy()
  view = null
  lookups.clear()
  clearFeed()
  clearNotices()
  document.body.dataset.auth = 'out'
  nav.hidden = true
  navToggle.hidden = true
  connection.hidden = true
  account.hidden = true
  renderSignIn(main, { message, messageKind: kind, onSignedIn: enter })
}

document.getElementById('sign-out').addEventListener('click', async () => {
  phase = 'leaving'
  presence.stop()
  await sync.stop()
  await supabase.auth.signOut().catch(() => {})
  if (location.pathname !== '/') history.replaceState(null, '', '/')
  leave('You have signed out.')
})

// Another tab signed out, or the refresh token was revoked (password changed, account deactivated).
supabase.auth.onAuthStateChange((event) => {
  if (event !== 'SIGNED_OUT' || phase !== 'in') return
  setTimeout(async () => {
    await sync.stop()
    leave(SESSION_ENDED_MESSAGE)
  }, 0)
})

// --- navigation -----------------------------------------------------------------------------------

function setNavOpen(open) {
  document.body.dataset.navOpen = String(open)
  navToggle.setAttribute('aria-expanded', String(open))
}
navToggle.addEventListener('click', () => setNavOpen(document.body.dataset.navOpen !== 'true'))
setNavOpen(false)

export function navigate(path) {
  if (path !== location.pathname + location.search) history.pushState(null, '', path)
  setNavOpen(false)
  route({ focus: true })
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]')
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  const url = new URL(link.href)
  if (link.hasAttribute('download') || url.protocol === 'blob:') return // a file to save (CSV export)
  if (url.origin !== location.origin || link.target || url.pathname.startsWith('/static/')) return
  event.preventDefault()
  navigate(url.pathname + url.search)
})
window.addEventListener('popstate', () => route({ focus: true }))

function notFound(focus) {
  document.title = 'Not found · WeXlot'
  mount(main, h('section', { 'aria-labelledby': 'nf-title' },
    h('h1', { id: 'nf-title', tabindex: '-1' }, 'Page not found'),
    h('p', {}, 'There is no page at this address. ', h('a', { href: '/dashboard' }, 'Go to the dashboard'), '.')))
  if (focus) main.querySelector('h1').focus()
}

/** The page object for a path: /dashboard, /pipeline…, /<table>, /<table>/<id>; null when none. */
function pageFor(segments) {
  const [first, second] = segments
  const params = new URLSearchParams(location.search)
  if (segments.length === 1 && PAGES[first]) {
    const page = PAGES[first]
    if (page.adminOnly && me.role !== 'admin') return null
    return { title: page.title, view: page.make({ me, params, onParams: replaceParams(`/${first}`) }) }
  }
  if (!TABLES.includes(first) || segments.length > 2) return null
  if (second) return { title: DEFS[first].title, view: new DetailView({ table: first, id: second, me }) }
  return {
    title: DEFS[first].title,
    view: new ListView({ table: first, me, params, onParams: replaceParams(`/${first}`) }),
  }
}

const replaceParams = (path) => (params) => {
  const query = params.toString()
  history.replaceState(null, '', `${path}${query ? `?${query}` : ''}`)
}

function route({ focus = false } = {}) {
  if (phase !== 'in') return
  view?.destroy()
  view = null
  const segments = location.pathname.split('/').filter(Boolean).map(decodeURIComponent)
  if (segments.length === 0) segments.push('dashboard')
  for (const link of nav.querySelectorAll('a')) {
    if (new URL(link.href).pathname === `/${segments[0]}`) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const page = pageFor(segments)
  if (!page) {
    notFound(focus)
    return
  }
  view = page.view
  document.title = `${page.title} · WeXlot`
  mount(main, view.el)
  if (focus) view.heading.focus()
  view.start().catch((err) => notify(`This page failed to load: ${err.message}`, { kind: 'error' }))
}

// --- start ----------------------------------------------------------------------------------------

async function boot() {
  const { data } = await supabase.auth.getSession()
  if (!data.session) {
    leave(null)
    return
  }
  try {
    await enter()
  } catch (err) {
    leave(err.message, 'error')
  }
}

boot()
