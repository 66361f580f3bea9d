// PLACEHOLDER (being built): replaced before commit.
import { h } from './dom.js'

export class RealtimeSettings {
  constructor() {
    this.heading = h('h1', { tabindex: '-1' }, 'RealtimeSettings')
    this.el = h('section', {}, this.heading)
  }

  async start() {}

  destroy() {}
}
