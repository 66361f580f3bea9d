// The sign-in page and what each refusal means for the person at the keyboard.

import { supabase } from './client.js'
import { h, mount } from './dom.js'

export const INACTIVE_MESSAGE = 'Your account is inactive, so you cannot sign in. Ask an administrator to reactivate it.'

/** A sentence for an auth error from supabase-js (GoTrue error codes). */
export function explainAuthError(error) {
  switch (error?.code) {
    case 'user_banned':
      return INACTIVE_MESSAGE
    case 'invalid_credentials':
      return 'Wrong email or password.'
    case 'over_request_rate_limit':
      return 'Too many sign-in attempts. Wait a minute, then try again.'
    case 'validation_failed':
      return 'Enter your email address and password.'
    default:
      if (error?.status === 0 || error?.name === 'AuthRetryableFetchError') return 'Cannot reach the WeXlot server. Check your connection and try again.'
      return error?.message || 'Sign-in failed.'
  }
}

/**
 * Renders the sign-in form into `main`. `onSignedIn()` runs after a successful sign-in; a thrown
 * error's message is shown in the form (e.g. the login has no active staff profile).
 */
export function renderSignIn(main, { message = null, messageKind = 'info', onSignedIn }) {
  const email = h('input', { id: 'signin-email', name: 'email', type: 'email', autocomplete: 'username', required: true, 'aria-describedby': 'signin-email-error' })
  const password = h('input', { id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'aria-describedby': 'signin-password-error' })
  const emailError = h('p', { id: 'signin-email-error', class: 'field-error', hidden: true })
  const passwordError = h('p', { id: 'signin-password-error', class: 'field-error', hidden: true })
  const formError = h('p', { class: 'form-error', role: 'alert', id: 'signin-error', hidden: true })
  const info = h('p', { class: messageKind === 'error' ? 'form-error' : 'form-info', role: 'status', hidden: !message }, message ?? '')
  const button = h('button', { type: 'submit' }, 'Sign in')

  const fieldError = (input, box, text) => {
    input.setAttribute('aria-invalid', 'true')
    box.textContent = text
    box.hidden = false
  }
  const reset = () => {
    for (const [input, box] of [[email, emailError], [password, passwordError]]) {
      input.removeAttribute('aria-invalid')
      box.hidden = true
    }
    formError.hidden = true
  }

  const form = h('form', { novalidate: true, 'aria-labelledby': 'signin-title' },
    h('div', { class: 'field' }, h('label', { for: 'signin-email' }, 'Email'), email, emailError),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password, passwordError),
    formError,
    button,
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    reset()
    info.hidden = true
    const address = email.value.trim()
    if (!address) fieldError(email, emailError, 'Enter your email address.')
    else if (!/^[^\s@]+@[^\s@]+$/.test(address)) fieldError(email, emailError, 'Enter an email address like name@example.com.')
    if (!password.value) fieldError(password, passwordError, 'Enter your password.')
    const invalid = form.querySelector('[aria-invalid="true"]')
    if (invalid) {
      invalid.focus()
      return
    }
    button.disabled = true
    button.textContent = 'Signing in…'
    try {
      const { error } = await supabase.auth.signInWithPassword({ email: address, password: password.value })
      if (error) throw error
      await onSignedIn()
    } catch (error) {
      formError.textContent = error.code || error.status !== undefined ? explainAuthError(error) : error.message
      formError.hidden = false
      password.select()
      password.focus()
    } finally {
      button.disabled = false
      button.textContent = 'Sign in'
    }
  })

  mount(main,
    h('section', { class: 'signin', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title' }, 'Sign in to WeXlot'),
      h('p', { class: 'intro' }, 'Your team’s contacts, companies and deals, live on every machine.'),
      info,
      form,
    ),
  )
  document.title = 'Sign in · WeXlot'
  email.focus()
}
