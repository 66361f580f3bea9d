// Building DOM without a framework: h() creates elements, text is always set as text (never as HTML).

/**
 * h('button', { type: 'button', onclick: fn, class: 'x', dataset: { id } }, 'Save') → <button>.
 * Attributes: `on*` functions become listeners, `class`, `dataset`, booleans toggle the attribute,
 * null/undefined/false are skipped. Children: nodes, strings, numbers, arrays (flattened), null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value)
    else if (key === 'class') el.className = value
    else if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key === 'value' && 'value' in el) el.value = value
    else if (key === 'checked' || key === 'selected') el[key] = Boolean(value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return parent
}

/** Replaces all children of `parent`. */
export function mount(parent, ...children) {
  parent.replaceChildren()
  return append(parent, children)
}

let ids = 0
/** A document-unique id with a readable prefix, for label/for and aria-describedby pairs. */
export const uid = (prefix) => `${prefix}-${++ids}`

/** Runs `fn` at most once per `ms` burst, with the last arguments (trailing edge). */
export function debounce(fn, ms) {
  let timer = null
  const wrapped = (...args) => {
    clearTimeout(timer)
    timer = setTimeout(() => fn(...args), ms)
  }
  wrapped.cancel = () => clearTimeout(timer)
  return wrapped
}

/** A random v4 UUID (crypto.randomUUID needs a secure context; plain-HTTP LAN setups are not one). */
export function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * Runs `fn()` when a select's choice settles. With the keyboard, every arrow key on a closed select fires
 * `change` (Chromium on Linux and Windows), so an immediate action would act on each option passed on the
 * way; keyboard changes wait until `ms` without another change, Enter, or leaving the select. A choice
 * made with the pointer acts at once.
 */
export function onSettledChange(select, fn, ms = 700) {
  let timer = null
  let pointer = false
  const fire = () => {
    clearTimeout(timer)
    timer = null
    fn()
  }
  select.addEventListener('pointerdown', () => { pointer = true })
  select.addEventListener('keydown', (event) => {
    pointer = false
    if (event.key === 'Enter' && timer) {
      event.preventDefault()
      fire()
    }
  })
  select.addEventListener('change', () => {
    clearTimeout(timer)
    if (pointer) fire()
    else timer = setTimeout(fire, ms)
  })
  select.addEventListener('blur', () => timer && fire())
  return select
}

/** Callbacks to tell about something: add(fn) returns the function that removes fn; emit(...args) calls each. */
export class Listeners {
  constructor() {
    this.fns = new Set()
  }

  add(fn) {
    this.fns.add(fn)
    return () => this.fns.delete(fn)
  }

  emit(...args) {
    for (const fn of [...this.fns]) fn(...args)
  }
}
