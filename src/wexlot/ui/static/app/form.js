// Create / edit dialogs for any table (fields from schema.js), with errors shown at the field.
//
// Checks that need no server (required, email, URL, number ranges) run first; then the server's answer
// is mapped back to a field where it names one (not-null, check, unique, foreign-key and type errors).
// An edit is saved only if the row still has the `version` the form was opened with (update … where
// version = N); zero rows touched means someone changed or deleted it meanwhile, or the user may not
// write it, and the form says which instead of overwriting. On a conflict the fields are merged: a
// field only one side changed takes that side's value, and a field both changed shows both values for
// the user to choose. While the form is open it follows the record live (someone else's save, a
// delete) and shows who else is viewing or editing it (presence).

import { supabase } from './client.js'
import { debounce, h, newId, uid } from './dom.js'
import { formatCell, formatMoney } from './format.js'
import { changedBy, lookups } from './lookups.js'
import { presence } from './presence.js'
import { DEFS, EMAIL, canWrite, describe, isElevated, plainLabel } from './schema.js'
import { sync } from './sync.js'

// --- values between rows and inputs -------------------------------------------------------------

function toLocalInput(iso) {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

function initialValue(field, row, me, defaults) {
  if (row) return row[field.name]
  if (defaults && field.name in defaults) return defaults[field.name]
  if (field.defaultMe) return me?.id ?? null
  if (field.defaultNow) return new Date().toISOString()
  return field.default ?? null
}

function inputFor(field, id, value, describedBy) {
  const common = { id, name: field.name, 'aria-describedby': describedBy, required: field.required || null }
  switch (field.type) {
    case 'textarea':
      return h('textarea', { ...common, rows: 3 }, value ?? '')
    case 'select':
    case 'ref': {
      const select = h('select', common)
      if (!field.required) select.append(h('option', { value: '' }, '— None —'))
      for (const opt of (field.type === 'ref' ? field.choices : field.options) ?? []) select.append(h('option', { value: opt.value }, opt.label))
      if (value && ![...select.options].some((o) => o.value === String(value))) {
        select.append(h('option', { value }, field.ref ? lookups.name(field.ref, value) : String(value)))
      }
      select.value = value ?? ''
      return select
    }
    case 'tags':
      return h('input', { ...common, type: 'text', value: (value ?? []).join(', '), autocomplete: 'off' })
    case 'number':
    case 'money':
      return h('input', {
        ...common, type: 'number', inputmode: 'decimal', step: field.type === 'money' ? '0.01' : '1',
        min: field.min ?? null, max: field.max ?? null, value: value ?? '',
      })
    case 'date':
      return h('input', { ...common, type: 'date', value: value ?? '' })
    case 'datetime':
      return h('input', { ...common, type: 'datetime-local', value: toLocalInput(value) })
    case 'checkbox':
      return h('input', { ...common, type: 'checkbox', checked: Boolean(value), required: null })
    default: {
      const autocomplete = { email: 'email', tel: 'tel', url: 'url' }[field.type] ?? 'off'
      return h('input', { ...common, type: field.type ?? 'text', value: value ?? '', autocomplete })
    }
  }
}

/** The field's value as the API wants it, or { error } when it is not valid. */
function readField(field, input) {
  if (field.type === 'checkbox') return { value: input.checked }
  const raw = input.value.trim()
  const label = plainLabel(field)
  if (raw === '') {
    if (field.required) return { error: `${label} is required.` }
    return { value: field.type === 'tags' ? [] : null }
  }
  switch (field.type) {
    case 'email':
      return EMAIL.test(raw) ? { value: raw } : { error: 'Enter an email address like name@example.com.' }
    case 'url':
      try {
        const url = new URL(raw)
        if (url.protocol === 'http:' || url.protocol === 'https:') return { value: raw }
      } catch {
        // fall through
      }
      return { error: 'Enter a full web address, starting with https://' }
    case 'tags':
      return { value: raw.split(',').map((t) => t.trim()).filter(Boolean) }
    case 'number':
    case 'money': {
      const n = Number(raw)
      if (!Number.isFinite(n)) return { error: `${label} must be a number.` }
      if (field.type === 'number' && !Number.isInteger(n)) return { error: `${label} must be a whole number.` }
      if (field.type === 'money' && Math.round(n * 100) !== n * 100) return { error: `${label} has at most 2 decimals.` }
      if (field.min !== undefined && n < field.min) {
        return { error: field.max !== undefined ? `Enter a number from ${field.min} to ${field.max}.` : `${label} cannot be less than ${field.min}.` }
      }
      if (field.max !== undefined && n > field.max) return { error: `Enter a number from ${field.min ?? 0} to ${field.max}.` }
      return { value: n }
    }
    case 'datetime': {
      const d = new Date(raw)
      return Number.isNaN(d.getTime()) ? { error: 'Enter a date and time.' } : { value: d.toISOString() }
    }
    default:
      return { value: raw }
  }
}

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

/** Whether two values of `field` mean the same (a form's "…T10:00:00.000Z" equals the row's "…T10:00:00+00:00"). */
function equal(field, a, b) {
  const empty = (v) => v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)
  if (empty(a) || empty(b)) return empty(a) && empty(b)
  if (field.type === 'datetime') return Date.parse(a) === Date.parse(b)
  if (field.type === 'number' || field.type === 'money') return Number(a) === Number(b)
  return same(a, b)
}

/** Puts `value` into a field's input (used when a merge changes what the form shows). */
function writeInput(field, input, value) {
  if (field.type === 'checkbox') input.checked = Boolean(value)
  else if (field.type === 'tags') input.value = (value ?? []).join(', ')
  else if (field.type === 'datetime') input.value = toLocalInput(value)
  else if (field.type === 'ref' && value && ![...input.options].some((o) => o.value === String(value))) {
    input.append(h('option', { value }, lookups.name(field.ref, value)))
    input.value = value
  } else input.value = value ?? ''
}

/** A value as the person reads it, for the side-by-side conflict choice. */
function display(field, value, currency) {
  if (value === null || value === undefined || value === '' || (Array.isArray(value) && !value.length)) return '(empty)'
  if (field.type === 'ref') return lookups.name(field.ref, value)
  if (field.type === 'money') return formatMoney(value, currency)
  if (field.type === 'select') return field.options.find((o) => o.value === value)?.label ?? String(value)
  if (field.type === 'checkbox') return value ? 'Yes' : 'No'
  if (field.type === 'datetime') return formatCell(value, 'timestamp')
  if (field.type === 'tags') return value.join(', ')
  return String(value)
}

/** The field a server error is about (by column name in its message, details or hint), and what to say. */
export function explainServerError(error, fields, def) {
  const text = [error.message, error.details, error.hint].filter(Boolean).join(' ')
  const field = fields.find((f) => new RegExp(`\\b${f.name}\\b`).test(text))
  const label = field ? plainLabel(field) : null
  switch (error.code) {
    case '23502':
      return { field, message: field ? `${label} is required.` : error.message }
    case '23505':
      return { field, message: field ? `Another ${def.singular} already has this ${label.toLowerCase()}.` : `This ${def.singular} already exists.` }
    case '23503':
      return { field, message: field ? `The chosen ${label.toLowerCase()} no longer exists.` : 'A linked record no longer exists.' }
    case '23514':
    case '22P02':
    case '22007':
    case '22008':
    case '22003':
    case '22023':
      return { field, message: field ? `${label}: this value is not accepted (${error.message}).` : error.message }
    case '42501':
      return { field: null, message: `You are not allowed to change this ${def.singular}.` }
    default:
      return { field: null, message: error.message || 'The server refused the change.' }
  }
}

/**
 * A search box above a reference select whose table is too big to list whole: typing replaces the
 * select's choices with the server's matches (the current choice stays).
 */
function finderFor(field, select, id) {
  const finderId = `${id}-find`
  const finder = h('input', { id: finderId, type: 'search', autocomplete: 'off', placeholder: 'Type part of a name', 'aria-controls': id })
  const status = h('span', { class: 'sr-only', 'aria-live': 'polite' })
  const refill = debounce(async () => {
    let found
    try {
      found = await lookups.search(field.ref, finder.value)
    } catch (err) {
      status.textContent = err.message
      return
    }
    const current = select.value
    const kept = [...select.options].filter((o) => o.value === '' || o.value === current)
    select.replaceChildren(...kept, ...found.filter((c) => c.value !== current).map((c) => h('option', { value: c.value }, c.label)))
    select.value = current
    status.textContent = `${found.length} ${found.length === 1 ? 'match' : 'matches'}`
  }, 250)
  finder.addEventListener('input', refill)
  return h('div', { class: 'finder' }, h('label', { for: finderId, class: 'sr-only' }, `Find ${plainLabel(field).toLowerCase()}`), finder, status)
}

// --- dialogs ------------------------------------------------------------------------------------

/** Shows a modal `<dialog>` (removed again when it closes), focusing `focus` if given. */
export function openDialog(dialog, focus = null) {
  document.body.append(dialog)
  dialog.addEventListener('close', () => dialog.remove())
  dialog.showModal()
  focus?.focus()
}

/** A modal yes/no question; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid('confirm-title')
    const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'confirm-dialog' },
      h('div', { class: 'dialog-body' },
        h('h2', { id: titleId }, title),
        h('p', {}, message),
        h('div', { class: 'dialog-actions' },
          h('button', { type: 'button', class: 'button-quiet', onclick: () => dialog.close('cancel') }, 'Cancel'),
          h('button', { type: 'button', class: danger ? 'button-danger' : null, onclick: () => dialog.close('confirm') }, confirmLabel),
        ),
      ),
    )
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'))
    openDialog(dialog)
  })
}

/**
 * Opens the create (row = null; `defaults` prefills fields) or edit form for `table`. Resolves with the saved row, or null when
 * cancelled. `onSaving(id)` runs just before the request (a new row's id is made here, so the list can
 * recognise the realtime echo of its own write even when the echo beats the HTTP response),
 * `onSaved(row, created)` before the dialog closes, `onFailed(id)` when the server refused.
 */
export async function openRecordForm({ table, row = null, defaults = null, me, onSaving, onSaved, onFailed }) {
  const def = DEFS[table]
  const creating = row === null
  // Your own staff row: no role or active switch, so nobody locks themselves out by mistake.
  const own = table === 'staff' && row?.id === me?.id
  const fields = def.fields
    .filter((f) => (!f.elevatedOnly || isElevated(me)) && !(own && (f.name === 'role' || f.name === 'is_active')))
    .map((f) => ({ ...f }))
  for (const field of fields) {
    if (field.type === 'ref') field.choices = await lookups.choices(field.ref).catch(() => [])
  }

  return new Promise((resolve) => {
    let base = row // the version being edited
    let saved = null
    let saving = false
    const titleId = uid('form-title')
    const errorBox = h('p', { class: 'form-error', role: 'alert', hidden: true })
    const conflictBox = h('div', { class: 'form-info', role: 'alert', hidden: true })
    const inputs = new Map()
    const errors = new Map()

    const grid = h('div', { class: 'form-grid' })
    const build = (source) => {
      grid.replaceChildren()
      inputs.clear()
      errors.clear()
      for (const field of fields) {
        const id = uid(`f-${field.name}`)
        const errorId = `${id}-error`
        const hintId = field.hint ? `${id}-hint` : null
        const input = inputFor(field, id, initialValue(field, source, me, defaults), [hintId, errorId].filter(Boolean).join(' '))
        const error = h('p', { id: errorId, class: 'field-error', hidden: true })
        inputs.set(field.name, input)
        errors.set(field.name, error)
        const label = h('label', { for: id }, field.label, field.required ? h('span', { class: 'required-mark', 'aria-hidden': 'true' }, ' *') : null)
        const hint = field.hint ? h('p', { id: hintId, class: 'hint' }, field.hint) : null
        const finder = field.type === 'ref' && lookups.isPartial(field.ref) ? finderFor(field, input, id) : null
        const classes = ['field', field.type === 'checkbox' ? 'field-check' : '', field.wide || field.type === 'textarea' ? 'field-wide' : ''].filter(Boolean).join(' ')
        grid.append(field.type === 'checkbox'
          ? h('div', { class: classes, dataset: { field: field.name } }, input, label, error)
          : h('div', { class: classes, dataset: { field: field.name } }, label, hint, finder, input, error))
      }
    }
    build(row)

    const setFieldError = (name, message) => {
      const input = inputs.get(name)
      const error = errors.get(name)
      if (!input || !error) return false
      input.setAttribute('aria-invalid', 'true')
      error.textContent = message
      error.hidden = false
      return true
    }
    const clearErrors = () => {
      for (const [name, input] of inputs) {
        input.removeAttribute('aria-invalid')
        errors.get(name).hidden = true
        errors.get(name).textContent = ''
      }
      errorBox.hidden = true
      conflictBox.hidden = true
    }
    const focusFirstInvalid = () => grid.querySelector('[aria-invalid="true"]')?.focus()

    const saveButton = h('button', { type: 'submit' }, creating ? `Add ${def.singular}` : 'Save changes')
    const form = h('form', { novalidate: true, 'aria-labelledby': titleId },
      h('h2', { id: titleId }, creating ? `New ${def.singular}` : `Edit ${def.singular}: ${describe(table, row)}`),
      h('p', { class: 'hint' }, 'Fields marked * are required.'),
      errorBox,
      conflictBox,
      grid,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button-quiet', onclick: () => dialog.close() }, 'Cancel'),
        saveButton,
      ),
    )
    const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'record-dialog', dataset: { table } }, form)

    const collect = () => {
      const values = {}
      let valid = true
      for (const field of fields) {
        const result = readField(field, inputs.get(field.name))
        if (result.error) {
          setFieldError(field.name, result.error)
          valid = false
        } else {
          values[field.name] = result.value
        }
      }
      return valid ? values : null
    }

    // Fields both sides changed, waiting for the user's choice: name -> { mine, theirs, choice }.
    const pending = new Map()
    const whoChanged = (latest) => changedBy(latest) ?? 'Someone outside the app' // a name even for "you" on another machine

    /** Merges what the user typed with `latest` (see the top of this file) and shows what is left to choose. */
    const mergeWith = (latest) => {
      const mine = Object.fromEntries(fields.map((f) => [f.name, readField(f, inputs.get(f.name)).value]))
      const merged = { ...latest }
      const both = []
      for (const field of fields) {
        const iChanged = !equal(field, mine[field.name], base[field.name])
        const theyChanged = !equal(field, latest[field.name], base[field.name])
        if (iChanged && theyChanged && !equal(field, mine[field.name], latest[field.name])) both.push(field)
        if (iChanged) merged[field.name] = mine[field.name]
      }
      const theirsOnly = fields.filter((f) => !equal(f, latest[f.name], base[f.name]) && !both.includes(f))
      base = latest
      build(merged)
      pending.clear()
      for (const field of both) {
        pending.set(field.name, { mine: mine[field.name], theirs: latest[field.name], choice: null })
        inputs.get(field.name).closest('.field').append(choiceFor(field, whoChanged(latest)))
      }
      const who = whoChanged(latest)
      const parts = [`${who} changed this ${def.singular} while you were editing it.`]
      if (theirsOnly.length) parts.push(`Their changes to ${theirsOnly.map((f) => plainLabel(f).toLowerCase()).join(', ')} are taken in.`)
      parts.push(both.length
        ? `You both changed ${both.map((f) => plainLabel(f).toLowerCase()).join(', ')}: choose which value to keep, then save.`
        : 'Nothing you changed was changed by them: review and save again.')
      conflictBox.replaceChildren(h('p', {}, parts.join(' ')))
      conflictBox.hidden = false
      dialog.dataset.conflict = both.length ? 'choose' : 'merged'
      ;(grid.querySelector('.conflict-choice input') ?? saveButton).focus()
    }

    /** Two labelled radios under a field both sides changed: keep mine / take theirs. */
    const choiceFor = (field, who) => {
      const entry = pending.get(field.name)
      const name = uid(`choice-${field.name}`)
      const label = plainLabel(field)
      const option = (value, text, shown) => {
        const id = uid(`${name}-${value}`)
        const radio = h('input', {
          type: 'radio', id, name, value,
          onchange: () => {
            entry.choice = value
            writeInput(field, inputs.get(field.name), value === 'mine' ? entry.mine : entry.theirs)
            errors.get(field.name).hidden = true
            inputs.get(field.name).removeAttribute('aria-invalid')
          },
        })
        return h('div', { class: 'choice' }, radio, h('label', { for: id }, `${text}: `, h('strong', {}, shown)))
      }
      return h('fieldset', { class: 'conflict-choice', dataset: { field: field.name } },
        h('legend', {}, `${label} was changed by you and by ${who}`),
        option('mine', 'Keep mine', display(field, entry.mine, base.currency)),
        option('theirs', `Use theirs (${who})`, display(field, entry.theirs, base.currency)))
    }

    // Follow the record while the form is open: someone else's save or a delete is said at once.
    let deleted = false
    const stopFollowing = creating ? () => {} : sync.onChange((change) => {
      const changed = change.record ?? change.old
      if (change.table !== table || changed?.id !== base.id) return
      if (change.type === 'DELETE') {
        deleted = true
        errorBox.textContent = `This ${def.singular} was deleted by someone else while you were editing it. Your changes cannot be saved.`
        errorBox.hidden = false
        saveButton.disabled = true
        dialog.dataset.deleted = 'true'
      } else if (Number(change.record.version) > Number(base.version) && !saving) {
        conflictBox.replaceChildren(h('p', {}, `${whoChanged(change.record)} just saved a change to this ${def.singular}. When you save, your changes are merged with theirs; fields you both changed are shown side by side.`))
        conflictBox.hidden = false
      }
    })

    // Who else has this record open (presence on the table's channel).
    const others = h('p', { class: 'presence-note', 'aria-live': 'polite', dataset: { testid: 'form-presence' } })
    const showOthers = () => {
      if (creating) return
      const list = presence.onRecord(table, base.id)
      others.hidden = list.length === 0
      others.textContent = list.length ? `Also here: ${list.map((p) => `${p.name}${p.editing ? ' (editing)' : ' (viewing)'}`).join(', ')}` : ''
    }
    const stopPresence = presence.onChange(showOthers)
    const focusBefore = presence.focus
    if (!creating) presence.setFocus(table, row.id, { editing: true })
    form.insertBefore(others, errorBox)
    showOthers()

    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      clearErrors()
      if (deleted) return
      const values = collect()
      const unchosen = [...pending].filter(([, entry]) => entry.choice === null).map(([name]) => name)
      for (const name of unchosen) setFieldError(name, 'Choose which value to keep.')
      if (!values || unchosen.length) {
        focusFirstInvalid()
        return
      }
      saveButton.disabled = true
      saving = true
      const id = creating ? newId() : base.id
      let ok = false
      onSaving?.(id)
      try {
        let result
        if (creating) {
          result = await supabase.from(table).insert({ id, ...values }).select().single()
        } else {
          const changes = Object.fromEntries(fields.filter((f) => !equal(f, values[f.name], base[f.name])).map((f) => [f.name, values[f.name]]))
          if (Object.keys(changes).length === 0) {
            dialog.close()
            return
          }
          result = await supabase.from(table).update(changes).eq('id', base.id).eq('version', base.version).select()
          if (!result.error) {
            if (result.data.length === 0) {
              await explainNoRowsUpdated()
              return
            }
            result = { data: result.data[0], error: null }
          }
        }
        if (result.error) {
          const { field, message } = explainServerError(result.error, fields, def)
          if (!(field && setFieldError(field.name, message))) {
            errorBox.textContent = message
            errorBox.hidden = false
          }
          focusFirstInvalid()
          return
        }
        saved = result.data
        ok = true
        onSaved?.(saved, creating)
        dialog.close()
      } catch (err) {
        errorBox.textContent = `Could not reach the server: ${err.message ?? err}`
        errorBox.hidden = false
      } finally {
        saving = false
        saveButton.disabled = deleted
        if (!ok) onFailed?.(id)
      }
    })

    const explainNoRowsUpdated = async () => {
      const { data: latest, error } = await supabase.from(table).select('*').eq('id', base.id).maybeSingle()
      if (error) {
        errorBox.textContent = error.message
        errorBox.hidden = false
      } else if (!latest) {
        deleted = true
        errorBox.textContent = `This ${def.singular} was deleted by someone else while you were editing it. Your changes cannot be saved.`
        errorBox.hidden = false
        dialog.dataset.deleted = 'true'
      } else if (Number(latest.version) !== Number(base.version)) {
        mergeWith(latest)
      } else if (!canWrite(table, me, latest)) {
        errorBox.textContent = `You may not change this ${def.singular}: only its owner, managers and admins can.`
        errorBox.hidden = false
      } else {
        errorBox.textContent = `The server did not save this ${def.singular}. Try again.`
        errorBox.hidden = false
      }
    }

    dialog.addEventListener('close', () => {
      stopFollowing()
      stopPresence()
      if (!creating) {
        if (focusBefore && focusBefore.table === table && focusBefore.id === row.id) presence.setFocus(table, row.id)
        else presence.clearFocus(table, row.id)
      }
      resolve(saved)
    })
    openDialog(dialog)
    grid.querySelector('input, select, textarea')?.focus()
  })
}
