// Staff administration on the /staff list (admins only): invite a colleague, change a role,
// deactivate or reactivate, set a temporary password.
//
// Logins are made and changed through GoTrue's admin API (/auth/v1/admin/users), which the server
// accepts from an active admin's own token, so the browser never needs the service key. Role and
// active flag are plain writes to the staff row: that row is the authority (auth/users.py), and the
// server cuts a deactivated member's open sessions off the moment is_active becomes false.

import { apiFetch, supabase } from './client.js'
import { h, onSettledChange, uid } from './dom.js'
import { confirmDialog, openDialog } from './form.js'
import { addListExtra } from './listextras.js'
import { notify } from './notices.js'
import { EMAIL, capital } from './schema.js'
import { sync } from './sync.js'

const ROLES = ['rep', 'manager', 'admin']
const ROLE_HELP = {
  rep: 'Rep: sees the team’s records and their own private ones; changes what they own.',
  manager: 'Manager: sees and changes every record.',
  admin: 'Admin: everything, plus staff and realtime settings.',
}
const TIMEOUT_MS = 15_000
// No 0/O, 1/l/I: the password is read aloud or copied by hand.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'

/** A random temporary password like "k7Qm-x2Pd-R9tz-bW4e" (crypto RNG, no modulo bias). */
export function temporaryPassword(groups = 4, size = 4) {
  const chars = []
  const limit = 256 - (256 % ALPHABET.length)
  while (chars.length < groups * size) {
    for (const byte of crypto.getRandomValues(new Uint8Array(32))) {
      if (byte < limit && chars.length < groups * size) chars.push(ALPHABET[byte % ALPHABET.length])
    }
  }
  const parts = []
  for (let i = 0; i < groups; i++) parts.push(chars.slice(i * size, (i + 1) * size).join(''))
  return parts.join('-')
}

/** A call to /auth/v1/admin/users[/id] as the signed-in admin; throws an Error with `code` and `status`. */
async function adminUsers(method, path, body) {
  let response
  try {
    response = await apiFetch(`/auth/v1/admin/users${path}`, {
      method, body, headers: { 'X-Supabase-Api-Version': '2024-01-01' }, timeoutMs: TIMEOUT_MS,
    })
  } catch (err) {
    if (err.code === 'no_session') throw err
    throw Object.assign(new Error(`Could not reach the server: ${err.message ?? err}`), { code: 'network', status: 0 })
  }
  const json = await response.json().catch(() => ({}))
  if (!response.ok) {
    const message = json.msg ?? json.message ?? json.error_description ?? `The server answered HTTP ${response.status}.`
    throw Object.assign(new Error(message), { code: json.code ?? json.error_code ?? null, status: response.status })
  }
  return json
}

/** Where an admin API error belongs ('email', 'role', 'full_name' or null for the whole form) and what to say. */
function explainAdminError(err) {
  switch (err.code) {
    case 'email_exists':
    case 'user_already_exists':
      return { field: 'email', message: 'A login with this email address already exists.' }
    case 'email_address_invalid':
      return { field: 'email', message: 'Enter an email address like name@example.com.' }
    case 'weak_password':
      return { field: null, message: err.message }
    case 'not_admin':
      return { field: null, message: 'Only active admins may manage logins. Your role may have changed: reload the page.' }
    case 'user_not_found':
      return { field: null, message: 'This login no longer exists.' }
    case 'validation_failed':
      if (/role/i.test(err.message)) return { field: 'role', message: err.message }
      if (/name/i.test(err.message)) return { field: 'full_name', message: err.message }
      return { field: null, message: err.message }
    default:
      if (err.status === 401) return { field: null, message: 'Your session has expired. Sign in again.' }
      return { field: null, message: err.message || 'The server refused the request.' }
  }
}

/** Copies `text`; the Clipboard API needs a secure context, so plain-HTTP LAN setups fall back to a selection copy. */
async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    input.select()
    try {
      return document.execCommand('copy')
    } catch {
      return false
    }
  }
}

/** The "hand this over" block: email and password, read-only, with a copy button. */
function credentialsBlock(email, password) {
  const passwordId = uid('temp-password')
  const status = h('p', { class: 'copy-status', role: 'status', 'aria-live': 'polite' })
  const input = h('input', {
    id: passwordId, type: 'text', readonly: true, value: password, class: 'secret',
    spellcheck: 'false', autocomplete: 'off', dataset: { testid: 'temporary-password' },
  })
  const copy = h('button', { type: 'button', class: 'button-quiet', onclick: async () => {
    const ok = await copyText(`${email}\n${password}`, input)
    status.textContent = ok ? 'Copied email and password.' : 'Could not copy: select the password and copy it by hand.'
  } }, 'Copy')
  input.addEventListener('focus', () => input.select())
  return h('div', { class: 'credentials' },
    h('dl', {},
      h('dt', {}, 'Email'), h('dd', {}, email),
    ),
    h('div', { class: 'field' },
      h('label', { for: passwordId }, 'Temporary password'),
      h('div', { class: 'secret-row' }, input, copy),
    ),
    status,
    h('p', { class: 'hint' }, 'This password is shown only now. Hand it over in person or by a channel you trust; they can change it after signing in.'),
  )
}

// --- invite ---------------------------------------------------------------------------------------

function inviteDialog(view) {
  const titleId = uid('invite-title')
  const fields = [
    { name: 'full_name', label: 'Full name', type: 'text', required: true, autocomplete: 'name' },
    { name: 'email', label: 'Email', type: 'email', required: true, autocomplete: 'email' },
    { name: 'role', label: 'Role', type: 'select', required: true },
    { name: 'title', label: 'Job title', type: 'text', hint: 'Optional.', autocomplete: 'organization-title' },
  ]
  const inputs = {}
  const errors = {}
  const grid = h('div', { class: 'form-grid' })
  for (const field of fields) {
    const id = uid(`invite-${field.name}`)
    const errorId = `${id}-error`
    const hintId = field.name === 'role' || field.hint ? `${id}-hint` : null
    const describedBy = [hintId, errorId].filter(Boolean).join(' ')
    const input = field.type === 'select'
      ? h('select', { id, name: field.name, required: true, 'aria-describedby': describedBy },
        ROLES.map((role) => h('option', { value: role }, capital(role))))
      : h('input', { id, name: field.name, type: field.type, required: field.required || null, autocomplete: field.autocomplete, 'aria-describedby': describedBy })
    const hint = hintId ? h('p', { id: hintId, class: 'hint' }, field.hint ?? ROLE_HELP.rep) : null
    if (field.type === 'select') input.addEventListener('change', () => { hint.textContent = ROLE_HELP[input.value] })
    inputs[field.name] = input
    errors[field.name] = h('p', { id: errorId, class: 'field-error', hidden: true })
    grid.append(h('div', { class: 'field', dataset: { field: field.name } },
      h('label', { for: id }, field.label, field.required ? h('span', { class: 'required-mark', 'aria-hidden': 'true' }, ' *') : null),
      hint, input, errors[field.name]))
  }
  const errorBox = h('p', { class: 'form-error', role: 'alert', hidden: true })
  const submit = h('button', { type: 'submit' }, 'Invite')
  const cancel = h('button', { type: 'button', class: 'button-quiet', onclick: () => dialog.close() }, 'Cancel')
  const form = h('form', { novalidate: true, 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Invite a colleague'),
    h('p', { class: 'hint' }, 'Creates their login and staff profile with a temporary password for you to hand over. Fields marked * are required.'),
    errorBox, grid,
    h('div', { class: 'dialog-actions' }, cancel, submit),
  )
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'record-dialog admin-dialog', dataset: { dialog: 'invite' } }, form)

  const setError = (name, message) => {
    if (name && inputs[name]) {
      inputs[name].setAttribute('aria-invalid', 'true')
      errors[name].textContent = message
      errors[name].hidden = false
    } else {
      errorBox.textContent = message
      errorBox.hidden = false
    }
  }
  const clearErrors = () => {
    for (const name of Object.keys(inputs)) {
      inputs[name].removeAttribute('aria-invalid')
      errors[name].hidden = true
    }
    errorBox.hidden = true
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    clearErrors()
    const values = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value.trim()]))
    if (!values.full_name) setError('full_name', 'Full name is required.')
    if (!values.email) setError('email', 'Email is required.')
    else if (!EMAIL.test(values.email)) setError('email', 'Enter an email address like name@example.com.')
    if (form.querySelector('[aria-invalid="true"]')) {
      form.querySelector('[aria-invalid="true"]').focus()
      return
    }
    submit.disabled = true
    submit.textContent = 'Inviting…'
    const password = temporaryPassword()
    try {
      const user = await adminUsers('POST', '', {
        email: values.email,
        password,
        email_confirm: true,
        user_metadata: { full_name: values.full_name, role: values.role },
      })
      // The admin API sets name and role; the job title is a plain staff column.
      const titleError = values.title ? await setTitle(view, user.id, values.title) : null
      // No notice here: the dialog says it, and the list announces the new row.
      showInvited(dialog, { name: values.full_name, email: user.email ?? values.email, password, titleError })
      if (sync.state !== 'live') view.reload()
    } catch (err) {
      const { field, message } = explainAdminError(err)
      setError(field, message)
      ;(field ? inputs[field] : inputs.full_name).focus()
    } finally {
      submit.disabled = false
      submit.textContent = 'Invite'
    }
  })
  openDialog(dialog, inputs.full_name)
}

/** Sets the new staff row's job title; its echo is marked as this tab's own write (no second notice). */
async function setTitle(view, userId, title) {
  const { data: found, error: findError } = await supabase.from('staff').select('id').eq('user_id', userId).maybeSingle()
  if (findError || !found) return findError ?? new Error('the staff row was not found')
  const done = view.ownWrite(found.id)
  const { data, error } = await supabase.from('staff').update({ title }).eq('id', found.id).select('id, version')
  done(data?.[0])
  return error ?? null
}

function showInvited(dialog, { name, email, password, titleError }) {
  const titleId = uid('invited-title')
  const done = h('button', { type: 'button', onclick: () => dialog.close() }, 'Done')
  const body = h('div', { class: 'dialog-body' },
    h('h2', { id: titleId, tabindex: '-1' }, `${name} can now sign in`),
    titleError ? h('p', { class: 'form-error', role: 'alert' }, `The login was created, but the job title was not saved: ${titleError.message}`) : null,
    credentialsBlock(email, password),
    h('div', { class: 'dialog-actions' }, done),
  )
  dialog.setAttribute('aria-labelledby', titleId)
  dialog.dataset.dialog = 'invited'
  dialog.replaceChildren(body)
  body.querySelector('h2').focus()
}

// --- per-row actions ------------------------------------------------------------------------------

/**
 * Sets one field of the staff row from the value the admin saw to a new one (compare-and-set on that
 * field, so a change someone made meanwhile is never silently reverted). The list updates from the
 * realtime echo (or a reload when not live).
 */
async function updateStaff(view, row, field, value) {
  const done = view.ownWrite(row.id)
  const { data, error } = await supabase.from('staff').update({ [field]: value }).eq('id', row.id).eq(field, row[field]).select()
  done(data?.[0])
  if (error) throw new Error(error.code === '42501' ? 'You may not change staff members.' : error.message)
  if (!data.length) throw new Error('someone changed it meanwhile, or you may no longer change staff. The list shows the current state.')
  if (sync.state !== 'live') view.reload()
  return data[0]
}

async function changeRole(view, row, select) {
  const role = select.value
  if (role === row.role) return
  if (role === 'admin' || row.role === 'admin') {
    const ok = await confirmDialog({
      title: role === 'admin' ? `Make ${row.full_name} an admin?` : `Remove admin rights from ${row.full_name}?`,
      message: role === 'admin'
        ? 'Admins can invite and deactivate staff, set passwords and change realtime settings.'
        : `${row.full_name} will become a ${role} and lose access to staff administration and realtime settings.`,
      confirmLabel: role === 'admin' ? 'Make admin' : `Make ${role}`,
    })
    if (!ok) {
      select.value = row.role
      select.focus()
      return
    }
  }
  select.disabled = true
  try {
    await updateStaff(view, row, 'role', role)
    notify(`${row.full_name} is now ${role === 'admin' ? 'an' : 'a'} ${role}`)
  } catch (err) {
    select.value = row.role
    notify(`Could not change the role of ${row.full_name}: ${err.message}`, { kind: 'error' })
  } finally {
    select.disabled = false
  }
}

async function setActive(view, row, active) {
  const ok = await confirmDialog(active
    ? {
      title: `Reactivate ${row.full_name}?`,
      message: `${row.full_name} can sign in again with their password and sees data live again.`,
      confirmLabel: 'Reactivate',
    }
    : {
      title: `Deactivate ${row.full_name}?`,
      message: `${row.full_name} stops receiving data at once on every machine where they are signed in, and cannot sign in until reactivated. Their records stay.`,
      confirmLabel: 'Deactivate',
      danger: true,
    })
  if (!ok) return
  try {
    await updateStaff(view, row, 'is_active', active)
    notify(active ? `${row.full_name} was reactivated` : `${row.full_name} was deactivated and signed out everywhere`)
  } catch (err) {
    notify(`Could not ${active ? 'reactivate' : 'deactivate'} ${row.full_name}: ${err.message}`, { kind: 'error' })
  }
}

/** Asks first, then sets (or, for a staff row without a login, creates) a login with a temporary password. */
function passwordDialog(row) {
  const titleId = uid('password-title')
  const hasLogin = Boolean(row.user_id)
  const errorBox = h('p', { class: 'form-error', role: 'alert', hidden: true })
  const confirm = h('button', { type: 'submit', class: 'button-danger' }, hasLogin ? 'Set temporary password' : 'Create login')
  const cancel = h('button', { type: 'button', class: 'button-quiet', onclick: () => dialog.close() }, 'Cancel')
  const form = h('form', { 'aria-labelledby': titleId },
    h('h2', { id: titleId }, hasLogin ? `Temporary password for ${row.full_name}` : `Create a login for ${row.full_name}`),
    h('p', {}, hasLogin
      ? `Their current password stops working and they are signed out on every machine. You get a new password to hand over.`
      : `${row.full_name} has no login yet. This creates one for ${row.email} with a temporary password to hand over.`),
    errorBox,
    h('div', { class: 'dialog-actions' }, cancel, confirm),
  )
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'confirm-dialog admin-dialog', dataset: { dialog: 'password' } }, form)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    errorBox.hidden = true
    confirm.disabled = true
    const password = temporaryPassword()
    try {
      const user = hasLogin
        ? await adminUsers('PUT', `/${encodeURIComponent(row.user_id)}`, { password })
        : await adminUsers('POST', '', { email: row.email, password, email_confirm: true })
      const doneTitle = uid('password-done')
      const done = h('button', { type: 'button', onclick: () => dialog.close() }, 'Done')
      const body = h('div', { class: 'dialog-body' },
        h('h2', { id: doneTitle, tabindex: '-1' }, `New password for ${row.full_name}`),
        credentialsBlock(user.email ?? row.email, password),
        h('div', { class: 'dialog-actions' }, done))
      dialog.setAttribute('aria-labelledby', doneTitle)
      dialog.dataset.dialog = 'password-set'
      dialog.replaceChildren(body)
      body.querySelector('h2').focus()
      notify(hasLogin ? `A temporary password was set for ${row.full_name}` : `A login was created for ${row.full_name}`)
    } catch (err) {
      errorBox.textContent = explainAdminError(err).message
      errorBox.hidden = false
      confirm.disabled = false
      confirm.focus()
    }
  })
  openDialog(dialog, cancel)
}

// --- registration ---------------------------------------------------------------------------------

const isAdminOnStaff = (view) => view.table === 'staff' && view.me?.role === 'admin' && view.me?.is_active

addListExtra({
  toolbar(view) {
    if (!isAdminOnStaff(view)) return []
    return [h('button', { type: 'button', dataset: { action: 'invite' }, onclick: () => inviteDialog(view) }, 'Invite colleague')]
  },
  rowActions(view, row) {
    if (!isAdminOnStaff(view)) return []
    const name = row.full_name
    // Not on your own row: an admin could lock themselves out (or end their own session) by mistake.
    if (row.id === view.me.id) return [h('span', { class: 'badge staff-you' }, 'You')]
    const selectId = uid('role-of')
    const select = h('select', {
      id: selectId, class: 'role-select', dataset: { action: 'role' }, disabled: !row.is_active || null,
    }, ROLES.map((role) => h('option', { value: role, selected: role === row.role }, capital(role))))
    onSettledChange(select, () => changeRole(view, row, select))
    select.value = row.role
    return [h('span', { class: 'staff-admin' },
      h('label', { for: selectId, class: 'sr-only' }, `Role of ${name}`),
      select,
      row.is_active
        ? h('button', { type: 'button', class: 'button-quiet button-small', dataset: { action: 'deactivate' }, 'aria-label': `Deactivate ${name}`, onclick: () => setActive(view, row, false) }, 'Deactivate')
        : h('button', { type: 'button', class: 'button-quiet button-small', dataset: { action: 'reactivate' }, 'aria-label': `Reactivate ${name}`, onclick: () => setActive(view, row, true) }, 'Reactivate'),
      h('button', {
        type: 'button', class: 'button-quiet button-small', dataset: { action: 'password' },
        'aria-label': row.user_id ? `Set temporary password for ${name}` : `Create login for ${name}`,
        onclick: () => passwordDialog(row),
      }, row.user_id ? 'New password' : 'Create login'),
    )]
  },
})
